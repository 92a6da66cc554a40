"""Container health checks that cost a Python start and little more. Docker runs them every
few seconds in every container, so they import no AMQP client, HTTP library or settings:
`hurtig-worker --health` imported pika and cost its container 210 ms of CPU per check
(14 ms a second per worker at a 15-s interval); this costs 44 (the container's cgroup).

    python3 -m hurtig.health worker            the worker loop touched its health file lately
    python3 -m hurtig.health http HOST PORT PATH   GET answers 200 within 3 s
"""

from __future__ import annotations

import os
import socket
import sys
import time

WORKER_HEALTH_FILE = "/tmp/hurtig-worker.health"
WORKER_MAX_AGE_S = 30.0


def worker_health_file(env: dict[str, str] | None = None) -> str:
    return (os.environ if env is None else env).get("HURTIG_HEALTH_FILE", WORKER_HEALTH_FILE)


def healthy(path: str, max_age: float = WORKER_MAX_AGE_S) -> bool:
    """Whether the worker loop touched its health file within max_age seconds."""
    try:
        return time.time() - os.stat(path).st_mtime < max_age
    except OSError:
        return False


def http_ok(host: str, port: int, path: str, timeout: float = 3.0) -> bool:
    """Whether GET path answers 200 (HTTP/1.0: the server closes after the answer)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode("ascii"))
            status = s.recv(64).split(b" ", 2)
    except OSError:
        return False
    return len(status) >= 2 and status[1] == b"200"


def main(argv: list[str]) -> int:
    match argv[1:]:
        case ["worker"]:
            return 0 if healthy(worker_health_file()) else 1
        case ["http", host, port, path]:
            return 0 if http_ok(host, int(port), path) else 1
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
