"""API keys: who may submit jobs, and to which functions.

The keys file (HURTIG_API_KEYS_FILE, written by the api role from the inventory) is JSON,
one entry per client, and holds no key, only the SHA-256 of each:

    [{"name": "acme-shop", "sha256": ["<64 hex>", ...], "functions": ["record"]}]

`functions` may be ["*"] (every function). Optional `rate` (requests per second) and
`burst` limit a client in this process: the api role writes each process its share of the
client's rate in the inventory (a token bucket per client; 429 with Retry-After beyond it).
A client has several hashes while its key is
rotated; its name scopes its Idempotency-Keys, so a retry with the new key gives the same
job. The file is read again when it changes (looked at at most once a second): adding or
revoking a key needs no restart.

A request's key is hashed and compared with every hash in constant time
(hmac.compare_digest, no early exit). Keys are never logged.

    python -m hurtig.auth hash      reads a key on stdin, prints its SHA-256
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("hurtig.auth")

# RFC 6750 b64token, at least 16 characters
BEARER = re.compile(r"^Bearer +([A-Za-z0-9._~+/-]{16,512}=*) *$", re.IGNORECASE)
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Client:
    name: str
    functions: frozenset[str]
    rate: float = 0.0  # requests per second in this process; 0: no limit
    burst: float = 1.0

    def may_call(self, function: str) -> bool:
        return "*" in self.functions or function in self.functions


@dataclass
class Bucket:
    """A token bucket: `burst` requests at once, refilled at `rate` per second."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float:
        """0 when a request may go now (and takes its token), else the seconds until one may."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def _number(entry: dict, field: str, default: float, low: float) -> float:
    value = entry.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise ValueError(f"{entry.get('name')}: {field} must be a number >= {low}")
    return float(value)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse(text: str) -> list[tuple[str, Client]]:
    """(hash, client) pairs of a keys file; ValueError naming what is wrong."""
    entries = json.loads(text)
    if not isinstance(entries, list):
        raise ValueError("the keys file is a JSON list")
    out = []
    for e in entries:
        name, hashes, functions = e.get("name"), e.get("sha256"), e.get("functions")
        if not isinstance(name, str) or not name:
            raise ValueError(f"an entry without a name: {sorted(e)}")
        if isinstance(hashes, str):
            hashes = [hashes]
        if not hashes or not all(isinstance(h, str) and HEX64.match(h) for h in hashes):
            raise ValueError(f"{name}: sha256 must be one or more 64-character lowercase hex digests")
        if not functions or not all(isinstance(f, str) for f in functions):
            raise ValueError(f"{name}: functions must be a non-empty list of names (or ['*'])")
        rate = _number(e, "rate", 0, 0)
        client = Client(name, frozenset(functions), rate, _number(e, "burst", max(1.0, rate), 1))
        out += [(h, client) for h in hashes]
    return out


class Keys:
    """The clients of the keys file, reloaded when the file changes."""

    def __init__(self, path: str | Path, check_every: float = 1.0) -> None:
        self.path = Path(path)
        self.check_every = check_every
        self._entries: list[tuple[str, Client]] = []
        self._stamp: tuple[int, int, int] | None = None
        self._next_check = 0.0
        self._buckets: dict[Client, Bucket] = {}
        self._reload(initial=True)

    def _reload(self, initial: bool = False) -> None:
        st = os.stat(self.path)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            entries = parse(self.path.read_text())
        except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            if initial:
                raise SystemExit(f"hurtig-api: {self.path}: {exc}") from None
            log.error("keys file not reloaded; the previous keys stay valid", extra={"error": str(exc)})
            return
        self._entries, self._stamp = entries, stamp
        if not initial:
            log.info("keys file reloaded", extra={"clients": len({c.name for _, c in entries})})

    def client(self, authorization: str | None) -> Client | None:
        """The client whose key the Authorization header carries, or None."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.check_every
            try:
                self._reload()
            except OSError as exc:
                log.error("keys file unreadable; the previous keys stay valid", extra={"error": str(exc)})
        match = BEARER.match(authorization or "")
        if not match:
            return None
        presented = digest(match.group(1))
        found = None
        for h, client in self._entries:  # every entry, no early exit
            if hmac.compare_digest(h, presented):
                found = client
        return found

    def wait(self, client: Client) -> float:
        """0 when the client may send this request now, else the seconds until it may."""
        if client.rate <= 0:
            return 0.0
        now = time.monotonic()
        bucket = self._buckets.get(client)
        if bucket is None:  # a new client, or its rate changed: a full bucket
            self._buckets = {c: b for c, b in self._buckets.items() if c.name != client.name}
            bucket = self._buckets[client] = Bucket(client.rate, client.burst, client.burst, now)
        return bucket.take(now)


def main(argv: list[str]) -> int:
    if argv[1:] == ["hash"]:
        key = sys.stdin.read().strip()
        if not BEARER.match(f"Bearer {key}"):
            print("a key is 16 to 512 characters of A-Z a-z 0-9 . _ ~ + / - (then '=' padding)", file=sys.stderr)
            return 2
        print(digest(key))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
