"""The few Docker Engine API calls the autoscaler makes, over the engine's UNIX socket
(standard library only: the runtime image needs no Docker SDK)."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import quote, urlencode


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class DockerError(RuntimeError):
    pass


class Docker:
    def __init__(self, socket_path: str = "/var/run/docker.sock", timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def _call(self, method: str, path: str, timeout: float | None = None) -> Any:
        conn = _UnixConnection(self.socket_path, timeout or self.timeout)
        try:
            conn.request(method, path, headers={"Content-Length": "0"} if method == "POST" else {})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status >= 400:
            raise DockerError(f"{method} {path}: {response.status} {body[:200]!r}")
        return json.loads(body) if body else None

    def states(self, label: str) -> dict[str, str]:
        """Every container with this label (key=value), running or not: name -> State
        (created, running, exited, restarting, ...)."""
        query = urlencode({"all": "1", "filters": json.dumps({"label": [label]})})
        return {c["Names"][0].lstrip("/"): c["State"] for c in self._call("GET", f"/containers/json?{query}")}

    def start(self, name: str) -> None:
        self._call("POST", f"/containers/{quote(name)}/start")  # 304 when it already runs

    def stop(self, name: str, timeout_s: int) -> None:
        """SIGTERM (the container's stop signal), SIGKILL after timeout_s; returns when it stopped."""
        self._call("POST", f"/containers/{quote(name)}/stop?t={timeout_s}", timeout=timeout_s + 30)
