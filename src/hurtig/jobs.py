"""The job message: what the API publishes and the worker consumes (one JSON object)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Header names shared by the API, the worker and the tests.
ATTEMPT = "x-hurtig-attempt"
ERROR = "x-hurtig-error"
ERROR_TYPE = "x-hurtig-error-type"
FAILED_AT = "x-hurtig-failed-at"
DEAD_REASON = "x-hurtig-dead-reason"


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


def envelope(job_id: str, function: str, payload: bytes, submitted_at: str, idempotency_key: str | None) -> bytes:
    """The message body of a job whose payload is already valid JSON (the API parsed and
    checked it): the client's bytes spliced in, not parsed and encoded again. The same JSON
    value as `Job(...).to_body()`."""
    key = b"" if idempotency_key is None else b',"idempotency_key":' + json.dumps(idempotency_key).encode()
    head = b'{"job_id":' + json.dumps(job_id).encode() + b',"function":' + json.dumps(function).encode()
    return head + b',"payload":' + payload + b',"submitted_at":"' + submitted_at.encode() + b'"' + key + b"}"


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
