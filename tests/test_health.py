"""The containers' health checks (hurtig.health): what Docker runs every few seconds in
every API and worker container, so it must stay cheap (no AMQP client, no HTTP library)."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hurtig import health

SRC = Path(__file__).resolve().parent.parent / "src"


def check(*args: str, **env: str) -> int:
    """The command the containers' healthcheck runs, as a new process."""
    full_env = dict(os.environ, PYTHONPATH=str(SRC), **env)
    return subprocess.run([sys.executable, "-m", "hurtig.health", *args], env=full_env, check=False).returncode


def test_worker_health_file_fresh_stale_missing(tmp_path):
    path = tmp_path / "health"
    assert check("worker", HURTIG_HEALTH_FILE=str(path)) == 1  # never touched: the loop never ran
    path.touch()
    assert check("worker", HURTIG_HEALTH_FILE=str(path)) == 0
    old = time.time() - health.WORKER_MAX_AGE_S - 1
    os.utime(path, (old, old))
    assert check("worker", HURTIG_HEALTH_FILE=str(path)) == 1  # the loop stopped touching it


class _Ready(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    srv = http.server.HTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()


def test_http_ready_not_ready_and_down(server):
    port = str(server.server_address[1])
    assert check("http", "127.0.0.1", port, "/readyz") == 0
    assert check("http", "127.0.0.1", port, "/nowhere") == 1
    _Ready.status = 503  # a process whose broker channel is gone
    try:
        assert check("http", "127.0.0.1", port, "/readyz") == 1
    finally:
        _Ready.status = 200
    server.shutdown()
    server.server_close()
    assert check("http", "127.0.0.1", port, "/readyz") == 1


def test_usage_and_imports():
    assert check() == 2
    assert check("worker", "extra") == 2
    # what makes it cheap: nothing heavy comes in with it
    heavy = ("pika", "aiohttp", "urllib.request")
    code = f"import sys, hurtig.health; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
