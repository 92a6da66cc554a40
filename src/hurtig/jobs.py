"""The job message: what the API publishes and the worker consumes (one JSON object)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Header names shared by the API, the worker and the tests.
ATTEMPT = "x-hurtig-attempt"
ERROR = "x-hurtig-error"
ERROR_TYPE = "x-hurtig-error-type"
FAILED_AT = "x-hurtig-failed-at"
DEAD_REASON = "x-hurtig-dead-reason"

IDEMPOTENCY_NAMESPACE = uuid.UUID("5d7c5a4e-8c55-4b8e-9a57-0f1d1d3a6b21")
_NAMESPACE = IDEMPOTENCY_NAMESPACE.bytes
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # what the API accepts as Idempotency-Key
MAX_DEPTH = 64  # the deepest JSON nesting the API accepts in a job


class InvalidJob(ValueError):
    """A message that can never be processed (not JSON, not an object, fields missing)."""


class Rejected(Exception):
    """Raised by a handler for a job that can never succeed (a forbidden path, say): the
    worker dead-letters it at once, reason `rejected`, without retrying."""


@dataclass(frozen=True)
class Job:
    job_id: str
    function: str
    payload: Any
    submitted_at: str = ""
    idempotency_key: str | None = None
    attempt: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_body(self) -> bytes:
        body: dict[str, Any] = {
            "job_id": self.job_id,
            "function": self.function,
            "payload": self.payload,
            "submitted_at": self.submitted_at,
        }
        if self.idempotency_key is not None:
            body["idempotency_key"] = self.idempotency_key
        return json.dumps(body, separators=(",", ":")).encode()


def envelope(job_id: str, function: bytes, payload: bytes, submitted_at: str, idempotency_key: str | None) -> bytes:
    """The message body of a job whose payload is already valid JSON (the API parsed and
    checked it): the client's bytes spliced in, not parsed and encoded again. The same JSON
    value as `Job(...).to_body()`. `function` is the name already as a JSON string (the
    API encodes each once), `job_id` one of `new_id`'s (hex digits and dashes). A key
    without a quote, a backslash or a control character is copied as it is."""
    key = b"" if idempotency_key is None else b',"idempotency_key":' + _string(idempotency_key)
    head = b'{"job_id":"' + job_id.encode() + b'","function":' + function
    return head + b',"payload":' + payload + b',"submitted_at":"' + submitted_at.encode() + b'"' + key + b"}"


_PLAIN = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]*")  # printable ASCII but " and \


def _string(value: str) -> bytes:
    """`value` as a JSON string: json.dumps, or its bytes in quotes when nothing needs escaping."""
    if _PLAIN.fullmatch(value):
        return b'"' + value.encode() + b'"'
    return json.dumps(value).encode()


def parse(body: bytes, attempt: int = 0) -> Job:
    """Parse a message body; raise InvalidJob with the reason when it cannot be a job."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJob(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidJob("body is not a JSON object")
    missing = [k for k in ("job_id", "function", "payload") if k not in data]
    if missing:
        raise InvalidJob(f"missing required fields: {', '.join(missing)}")
    if not isinstance(data["job_id"], str) or not data["job_id"]:
        raise InvalidJob("job_id must be a non-empty string")
    return Job(
        job_id=data["job_id"],
        function=str(data["function"]),
        payload=data["payload"],
        submitted_at=str(data.get("submitted_at", "")),
        idempotency_key=data.get("idempotency_key"),
        attempt=attempt,
    )


def short_error(exc: BaseException) -> str:
    """An exception as a header or log field: its type and message, at most 1,000 characters."""
    return f"{type(exc).__name__}: {exc}"[:1000]


def retry_headers(headers: dict[str, Any] | None, attempt: int, exc: BaseException) -> dict[str, Any]:
    """A failed job's headers for its next attempt (through the retry exchange)."""
    return {**(headers or {}), ATTEMPT: attempt, ERROR: short_error(exc)}


def dead_headers(headers: dict[str, Any] | None, reason: str, exc: BaseException) -> dict[str, Any]:
    """A job's headers in the dead-letter queue: why, the error and its type, and when."""
    return {
        **(headers or {}),
        DEAD_REASON: reason,
        ERROR: short_error(exc),
        ERROR_TYPE: type(exc).__name__,
        FAILED_AT: datetime.now(UTC).isoformat(),
    }


def new_id(client: str, function: str, idempotency_key: str | None) -> str:
    """A job's id: derived from the Idempotency-Key when the client sent one (the same key
    from the same client for the same function always gives the same id, and two clients
    sending the same string get different jobs), else random."""
    if idempotency_key is None:
        return random_id()
    # uuid.uuid5 without its UUID object: SHA-1 of the namespace and the name, version 5
    raw = bytearray(hashlib.sha1(_NAMESPACE + f"{client}\n{function}\n{idempotency_key}".encode()).digest()[:16])
    return _format(raw, 0x50)


_RANDOM = bytearray()


def random_id() -> str:
    """A random (version 4) UUID, its bytes from a pool refilled 256 ids at a time: one
    `getrandom` call for 256 jobs, not one per job."""
    if not _RANDOM:
        _RANDOM.extend(os.urandom(16 * 256))
    raw = _RANDOM[-16:]
    del _RANDOM[-16:]
    return _format(raw, 0x40)


def _format(raw: bytearray, version: int) -> str:
    """16 bytes as a UUID string of `version` (0x40, 0x50), RFC 4122 variant."""
    raw[6] = (raw[6] & 0x0F) | version
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_SECOND: list[Any] = [0, ""]


def timestamp() -> str:
    """The time in ISO 8601 (UTC, microseconds), the date and time formatted once a second."""
    now = time.time()
    second = int(now)
    if second != _SECOND[0]:
        _SECOND[:] = [second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_SECOND[1]}.{int((now - second) * 1e6):06d}+00:00"


def too_deep(raw: bytes, value: Any) -> bool:
    """Whether a parsed JSON value nests deeper than MAX_DEPTH. A body with no more brackets
    than that cannot: those are counted in C, and only the others are walked."""
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and depth(value) > MAX_DEPTH


def depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item if isinstance(child, (dict, list)))
    return deepest
