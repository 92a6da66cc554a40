"""Recovered without a restart, against a real RabbitMQ: a rotated password (read from its
file at the next connect, URL-encoded), a channel the broker closed, a dead API process."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_api import Api
from test_worker import publish, running, settings, wait_until

from hurtig.worker import Worker

# every character that breaks a URL when it is not encoded
PASSWORDS = ("p@ss:w/rd%#?&=1", "n3w/p@ss:#%?")


@dataclass(frozen=True)
class Rotating:
    user: str
    template: str  # the broker URL as the roles pass it, `{password}` in place of the password
    password_file: Path


@pytest.fixture
def rotating(broker, tmp_path) -> Rotating:
    """A broker user with the first password, and its password file."""
    if broker.container is None:
        pytest.skip("needs the test broker container")
    user = f"rot{uuid.uuid4().hex[:8]}"
    broker.rabbitmqctl("add_user", user, PASSWORDS[0])
    broker.rabbitmqctl("set_permissions", "-p", "hurtig", user, ".*", ".*", ".*")
    password_file = tmp_path / "amqp.password"
    password_file.write_text(PASSWORDS[0] + "\n")
    template = f"amqp://{user}:{{password}}@{broker.host}:{broker.port}/{broker.vhost}"
    return Rotating(user, template, password_file)


def rotate(broker, rotating: Rotating) -> None:
    """The order a site.yml run applies: the broker first, then the node's file; then the
    connection drops (a broker restart, a network blip)."""
    broker.rabbitmqctl("change_password", rotating.user, PASSWORDS[1])
    rotating.password_file.write_text(PASSWORDS[1] + "\n")
    broker.rabbitmqctl("close_all_user_connections", rotating.user, "password rotated")


def test_the_api_reconnects_with_a_rotated_password(broker, function_name, rotating):
    queue = broker.declare_function(function_name)
    env = {"HURTIG_AMQP_URL": rotating.template, "HURTIG_AMQP_PASSWORD_FILE": str(rotating.password_file)}
    api = Api(broker, {function_name: queue}, **env)
    try:
        assert api.post(function_name).status_code == 202
        rotate(broker, rotating)
        api.wait_accepting(function_name, 30, "the API did not reconnect with the new password")
    finally:
        api.close()


def test_the_worker_reconnects_with_a_rotated_password(broker, function_name, rotating):
    queue = broker.declare_function(function_name)
    seen: list[str] = []
    handler = lambda payload, job: seen.append(job.job_id)  # noqa: E731
    urls, password_file = [rotating.template], str(rotating.password_file)
    worker = Worker(settings(broker, function_name, amqp_urls=urls, amqp_password_file=password_file), handler)
    with running(worker):
        first = publish(broker, function_name, 5)
        wait_until(lambda: len(seen) == 5)
        rotate(broker, rotating)
        second = publish(broker, function_name, 5)
        wait_until(lambda: len(seen) == 10)
    assert sorted(seen) == sorted(first + second)
    assert broker.count(queue) == 0


def test_the_api_reopens_a_channel_the_broker_closed(broker, function_name):
    queue = broker.declare_function(function_name)
    exchange = f"x.{function_name}"

    def declare() -> None:
        conn = broker.connect()
        ch = conn.channel()
        ch.exchange_declare(exchange, "direct", durable=True)
        ch.queue_bind(queue, exchange, function_name)
        conn.close()

    declare()
    api = Api(broker, {function_name: queue}, HURTIG_AMQP_URL=broker.url(), HURTIG_EXCHANGE=exchange)
    try:
        assert api.post(function_name).status_code == 202
        conn = broker.connect()
        conn.channel().exchange_delete(exchange)
        conn.close()
        # publishing to a missing exchange: the broker closes the channel (404), not the connection
        assert api.post(function_name).status_code == 503
        declare()
        api.wait_accepting(function_name, 10, "the API did not reopen its channel")
    finally:
        api.close()
    assert broker.count(queue) >= 2


def children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def test_a_dead_api_process_is_replaced(broker, function_name):
    queue = broker.declare_function(function_name)
    api = Api(broker, {function_name: queue}, HURTIG_API_WORKERS="2")
    try:
        wait_until(lambda: len(children(api.proc.pid)) == 2)
        before = children(api.proc.pid)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(children(api.proc.pid)) == 2 and victim not in children(api.proc.pid))
        api.wait_ready()
        statuses = [api.post(function_name).status_code for _ in range(20)]
        assert statuses == [202] * 20
    finally:
        api.close()
    assert not children(api.proc.pid) or api.proc.returncode is not None


def test_sigterm_stops_the_supervisor_and_its_processes(broker, function_name):
    queue = broker.declare_function(function_name)
    api = Api(broker, {function_name: queue}, HURTIG_API_WORKERS="2")
    wait_until(lambda: len(children(api.proc.pid)) == 2)
    kids = children(api.proc.pid)
    api.proc.send_signal(signal.SIGTERM)
    assert api.proc.wait(timeout=20) == 0
    assert not any(Path(f"/proc/{k}").exists() for k in kids)


def test_a_stopping_api_refuses_new_connections_and_answers_its_open_ones(broker, function_name):
    """What keeps an API restart behind nginx free of 502s (hurtig.serve): a refused connect
    is retried on the next API node; a request on a keep-alive connection that nginx had
    open is answered, with `Connection: close`, never reset."""
    queue = broker.declare_function(function_name)
    api = Api(broker, {function_name: queue}, HURTIG_API_WORKERS="2", HURTIG_API_DRAIN_S="3")
    wait_until(lambda: len(children(api.proc.pid)) == 2)
    conns = [http.client.HTTPConnection("127.0.0.1", api.port, timeout=5) for _ in range(6)]

    def post(conn: http.client.HTTPConnection) -> tuple[int, str]:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api.key}"}
        conn.request("POST", f"/v1/functions/{function_name}/jobs", b"{}", headers)
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Connection", "")

    assert [post(c) for c in conns] == [(202, "")] * 6  # keep-alive
    api.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", api.port), timeout=2)
    assert [post(c) for c in conns] == [(202, "close")] * 6
    assert api.proc.wait(timeout=20) == 0
    assert broker.count(queue) == 12
