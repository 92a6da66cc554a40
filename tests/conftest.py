"""Fixtures for the Python package's tests: a real RabbitMQ, never a mock.

The broker runs in a container built from Debian's archive by images/build.sh
(rabbitmq-trixie), published on a random 127.0.0.1 port, with an AMQPS listener (clients
verified against a throwaway CA, tests/pki.py) on another. Set HURTIG_TEST_AMQP_URL (an
administrator's URL with a vhost) to use a broker of your own instead (the TLS tests skip).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pika
import pki
import pytest

ROOT = Path(__file__).resolve().parent.parent
JOBS, RETRY, DEAD = "hurtig.jobs", "hurtig.retry", "hurtig.dead"


def load_plugin(kind: str, name: str) -> ModuleType:
    """Import a plugin file of the collection (kind: filter, test) for a unit test."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / kind / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Broker:
    host: str
    port: int
    container: str | None
    vhost: str = "hurtig"
    tls_port: int | None = None
    tls_dir: Path | None = None  # ca.pem, cert.pem and key.pem of a client of the CA

    def url(self, user: str = "admin", password: str = "admin-pw", **query: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"amqp://{user}:{password}@{self.host}:{self.port}/{self.vhost}" + (f"?{q}" if q else "")

    def connect(self, user: str = "admin", password: str = "admin-pw") -> pika.BlockingConnection:
        return pika.BlockingConnection(pika.URLParameters(self.url(user, password)))

    def restart(self) -> None:
        assert self.container, "restart needs the broker container"
        subprocess.run(["docker", "restart", "-t", "5", self.container], check=True, capture_output=True)
        self.wait()

    def stop(self) -> None:
        assert self.container
        subprocess.run(["docker", "stop", "-t", "5", self.container], check=True, capture_output=True)

    def start(self) -> None:
        assert self.container
        subprocess.run(["docker", "start", self.container], check=True, capture_output=True)
        self.wait()

    def wait(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.connect().close()
                return
            except Exception:  # not up yet
                time.sleep(0.5)
        raise RuntimeError("RabbitMQ did not come up")

    def rabbitmqctl(self, *args: str) -> str:
        assert self.container
        out = subprocess.run(
            ["docker", "exec", self.container, "rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True
        )
        return out.stdout

    def declare_function(
        self, name: str, delivery_limit: int = 20, retry_delay_ms: int = 200, max_ready: int = 100000
    ) -> str:
        """The topology the rabbitmq role declares for one function (its filter
        rabbitmq_topology, not a copy), its bounds policy included; returns its queue."""
        topology = load_plugin("filter", "rabbitmq_topology").rabbitmq_topology
        fn = {"name": name, "queue": f"jobs.{name}", "queue_type": "quorum", "delivery_limit": delivery_limit,
              "retry_delay_ms": retry_delay_ms, "max_ready": max_ready, "max_ready_bytes": 1 << 28}  # fmt: skip
        doc = topology([fn], JOBS, RETRY, DEAD)
        for p in doc["policies"]:
            self.rabbitmqctl("set_policy", "-p", self.vhost, "--apply-to", p["apply-to"], "--priority",
                             str(p["priority"]), p["name"], p["pattern"], json.dumps(p["definition"]))  # fmt: skip
        conn = self.connect()
        ch = conn.channel()
        for x in doc["exchanges"]:
            ch.exchange_declare(x["name"], x["type"], durable=True)
        for q in doc["queues"]:
            ch.queue_declare(q["name"], durable=True, arguments=q["arguments"])
        for b in doc["bindings"]:
            ch.queue_bind(b["destination"], b["source"], b["routing_key"])
        conn.close()
        return fn["queue"]

    def count(self, queue: str) -> int:
        conn = self.connect()
        n = conn.channel().queue_declare(queue, passive=True).method.message_count
        conn.close()
        return n

    def get_all(self, queue: str) -> list[tuple[pika.spec.BasicProperties, bytes]]:
        conn = self.connect()
        ch = conn.channel()
        out = []
        while True:
            method, props, body = ch.basic_get(queue)
            if method is None:
                break
            out.append((props, body))
            ch.basic_ack(method.delivery_tag)
        conn.close()
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    url = os.environ.get("HURTIG_TEST_AMQP_URL")
    if url:
        p = pika.URLParameters(url)
        yield Broker(p.host, p.port, None, p.virtual_host)
        return
    image = subprocess.run(
        [str(ROOT / "images" / "build.sh"), "tag", "rabbitmq-trixie"], check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run([str(ROOT / "images" / "build.sh"), "build", "rabbitmq-trixie"], check=True)
    name = f"hurtig-test-rabbitmq-{uuid.uuid4().hex[:8]}"
    port, tls_port = _free_port(), _free_port()  # fixed host ports: clients find the broker after a restart
    tls_dir = Path(tempfile.mkdtemp(prefix="hurtig-test-tls-"))
    tls_dir.chmod(0o755)
    ca = pki.make_ca(tls_dir)
    pki.issue(tls_dir, ca, "localhost", "server-")
    pki.issue(tls_dir, ca, "client", "")
    (tls_dir / "tls.conf").write_text(
        "listeners.ssl.default = 5671\n"
        + "".join(f"ssl_options.{k} = /etc/rabbitmq/tls/{v}\n" for k, v in
                  (("cacertfile", "ca.pem"), ("certfile", "server-cert.pem"), ("keyfile", "server-key.pem")))
        + "ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n"
    )  # fmt: skip
    (tls_dir / "tls.conf").chmod(0o644)
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--hostname", "localhost",
         "-p", f"127.0.0.1:{port}:5672", "-p", f"127.0.0.1:{tls_port}:5671",
         "-v", f"{tls_dir}:/etc/rabbitmq/tls:ro", "-v", f"{tls_dir / 'tls.conf'}:/etc/rabbitmq/conf.d/20-tls.conf:ro",
         image],
        check=True,
        capture_output=True,
    )  # fmt: skip
    try:
        b = Broker("127.0.0.1", port, name, tls_port=tls_port, tls_dir=tls_dir)
        deadline = time.monotonic() + 120
        while subprocess.run(
            ["docker", "exec", name, "rabbitmq-diagnostics", "-q", "check_port_connectivity"],
            capture_output=True,
            check=False,
        ).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError("RabbitMQ container did not start")
            time.sleep(1)
        b.rabbitmqctl("add_vhost", "hurtig")
        for user, pw, perms, tags in (
            ("admin", "admin-pw", (".*", ".*", ".*"), "administrator"),
            ("api", "api-pw", ("^$", f"^{JOBS}$", "^$"), ""),
            ("worker", "worker-pw", ("^$", f"^({RETRY}|{DEAD})$", "^jobs\\.[^.]+$"), ""),
            ("autoscaler", "autoscaler-pw", ("^$", "^$", "^$"), ""),  # reads depths by passive declares
        ):
            b.rabbitmqctl("add_user", user, pw)
            b.rabbitmqctl("set_permissions", "-p", "hurtig", user, *perms)
            b.rabbitmqctl("set_user_tags", user, tags)
        b.wait()
        yield b
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        shutil.rmtree(tls_dir, ignore_errors=True)


@pytest.fixture
def function_name() -> str:
    return f"f{uuid.uuid4().hex[:10]}"
