"""The broker of this scenario as its tests reach it: AMQPS on 127.0.0.1:25670 with the
deployment's CA, as the users the roles made."""

from __future__ import annotations

import sys
import time
import uuid
from functools import cache
from pathlib import Path

import pika
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from helpers import broker_password, drain_queue, tls_files, tls_options

PORT = 25670  # the node's AMQPS port, 5671
VHOST = "hurtig"
NODE = "rabbitmq-1"
USERS = {
    "admin": ("hurtig-admin", "test-admin-pw"),
    "api": ("hurtig-api", "test-api-pw"),
    # each function's own broker user
    "worker": ("hurtig-worker-sleep", broker_password("test-worker-pw", "hurtig-worker-sleep")),
    "resize-worker": ("hurtig-worker-resize", broker_password("test-worker-pw", "hurtig-worker-resize")),
}


def drain(queue: str, role: str = "worker") -> list[str]:
    return drain_queue(connect(role), queue)


@cache
def files() -> Path:
    return tls_files(NODE, "/etc/rabbitmq/tls")


def tls(**kwargs: bool) -> pika.SSLOptions:
    """A client of this deployment's CA (the broker node's own client certificate)."""
    return tls_options(files(), server_hostname=NODE, **kwargs)


def connect(
    role: str,
    user: str | None = None,
    password: str | None = None,
    ssl_options: pika.SSLOptions | None = None,
    attempts: int = 30,
) -> pika.BlockingConnection:
    if role in USERS:
        user, password = USERS[role]
    params = pika.ConnectionParameters(
        host="127.0.0.1",
        port=PORT,
        virtual_host=VHOST,
        credentials=pika.PlainCredentials(user, password),
        connection_attempts=attempts,
        retry_delay=1,
        ssl_options=ssl_options or tls(),
    )
    return pika.BlockingConnection(params)


def wait_running(host) -> None:
    for _ in range(60):
        if host.run("rabbitmq-diagnostics -q check_running").rc == 0:
            # the AMQP listener answers
            try:
                connect("admin").close()
                return
            except Exception:  # any failure means: not yet
                pass
        time.sleep(1)
    pytest.fail("broker did not come back within 60 s")


def purge(queue: str) -> None:
    conn = connect("admin")
    conn.channel().queue_purge(queue)
    conn.close()


def count(queue: str) -> int:
    conn = connect("admin")
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def publish(n: int, routing_key: str = "sleep") -> list[str]:
    conn = connect("api")
    ch = conn.channel()
    ch.confirm_delivery()
    ids = []
    for _ in range(n):
        job_id = str(uuid.uuid4())
        ch.basic_publish(
            "hurtig.jobs",
            routing_key,
            b'{"job_id": "%s"}' % job_id.encode(),
            pika.BasicProperties(delivery_mode=2, message_id=job_id, content_type="application/json"),
            mandatory=True,
        )
        ids.append(job_id)
    conn.close()
    return ids
