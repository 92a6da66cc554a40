"""The worker runtime against a real RabbitMQ (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pika

from hurtig import jobs
from hurtig.handler import JobContext
from hurtig.worker import Settings, Worker

TESTS = Path(__file__).resolve().parent


def publish(broker, function: str, n: int = 1, body: bytes | None = None, payload: Any = None) -> list[str]:
    conn = broker.connect("api", "api-pw")
    ch = conn.channel()
    ch.confirm_delivery()
    ids = []
    for _ in range(n):
        job = jobs.Job(str(uuid.uuid4()), function, payload if payload is not None else {})
        ch.basic_publish(
            "hurtig.jobs",
            function,
            body if body is not None else job.to_body(),
            pika.BasicProperties(delivery_mode=2, message_id=job.job_id, content_type="application/json"),
            mandatory=True,
        )
        ids.append(job.job_id)
    conn.close()
    return ids


def settings(broker, function: str, **kw: Any) -> Settings:
    defaults: dict[str, Any] = {
        "amqp_urls": [broker.url("worker", "worker-pw")],
        "function": function,
        "queue": f"jobs.{function}",
        "handler": "handlers:record",
        "prefetch": 4,
        "max_retries": 2,
        "timeout": 10.0,
        "stop_grace": 10.0,
        "backoff_max": 1.0,
    }
    defaults.update(kw)
    return Settings(**defaults)


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(worker.run()), daemon=True)
    t.start()
    try:
        yield worker
    finally:
        worker.request_stop()
        t.join(30)
        assert not t.is_alive(), "worker did not stop"
        assert result == [0]


def wait_until(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_acks_only_after_the_handler_succeeded(broker, function_name):
    queue = broker.declare_function(function_name)
    seen: list[str] = []
    gate = threading.Event()

    def handler(payload: Any, job: JobContext) -> None:
        gate.wait(10)
        seen.append(job.job_id)

    ids = publish(broker, function_name, 20, payload={"n": 1})
    with running(Worker(settings(broker, function_name), handler)):
        time.sleep(1)
        # handlers are blocked: nothing may be acked yet, the jobs are still on the broker
        assert broker.count(queue) == 20 - 4  # prefetch 4 delivered, unacked
        gate.set()
        wait_until(lambda: len(seen) == 20)
        wait_until(lambda: broker.count(queue) == 0)
    assert sorted(seen) == sorted(ids)
    assert broker.count(f"{queue}.dead") == 0


def test_handler_gets_payload_and_job_id(broker, function_name):
    broker.declare_function(function_name)
    got: list[tuple[Any, JobContext]] = []
    [job_id] = publish(broker, function_name, payload={"dots": "..."})
    with running(Worker(settings(broker, function_name), lambda p, j: got.append((p, j)))):
        wait_until(lambda: len(got) == 1)
    payload, ctx = got[0]
    assert payload == {"dots": "..."}
    assert (ctx.job_id, ctx.function, ctx.attempt) == (job_id, function_name, 0)


def test_failing_job_is_retried_then_dead_lettered_with_the_error(broker, function_name):
    queue = broker.declare_function(function_name, retry_delay_ms=100)
    attempts: list[int] = []

    def handler(payload: Any, job: JobContext) -> None:
        attempts.append(job.attempt)
        raise RuntimeError("boom")

    [job_id] = publish(broker, function_name)
    with running(Worker(settings(broker, function_name, max_retries=2), handler)):
        wait_until(lambda: broker.count(f"{queue}.dead") == 1)
    assert attempts == [0, 1, 2]
    [(props, body)] = broker.get_all(f"{queue}.dead")
    assert props.message_id == job_id
    assert json.loads(body)["job_id"] == job_id
    assert props.headers[jobs.DEAD_REASON] == "max_retries"
    assert props.headers[jobs.ERROR] == "RuntimeError: boom"
    assert props.headers[jobs.ATTEMPT] == 2
    assert broker.count(queue) == 0
    assert broker.count(f"{queue}.retry") == 0


def test_a_rejected_job_is_dead_lettered_at_once_with_the_reason(broker, function_name):
    queue = broker.declare_function(function_name, retry_delay_ms=100)
    attempts: list[int] = []

    def handler(payload: Any, job: JobContext) -> None:
        attempts.append(job.attempt)
        raise jobs.Rejected("source '/etc/passwd' is outside the allowed input directories")

    [job_id] = publish(broker, function_name)
    with running(Worker(settings(broker, function_name, max_retries=3), handler)):
        wait_until(lambda: broker.count(f"{queue}.dead") == 1)
    assert attempts == [0]  # no retry
    [(props, _)] = broker.get_all(f"{queue}.dead")
    assert props.message_id == job_id
    assert props.headers[jobs.DEAD_REASON] == "rejected"
    assert "outside the allowed input directories" in props.headers[jobs.ERROR]


def test_invalid_messages_go_straight_to_the_dead_letter_queue(broker, function_name):
    queue = broker.declare_function(function_name)
    called: list[str] = []
    publish(broker, function_name, body=b"not json {")
    publish(broker, function_name, body=b'{"job_id": "x"}')
    publish(broker, function_name, body=b"[1, 2]")
    publish(broker, function_name, body=b"\xff\xfe")
    with running(Worker(settings(broker, function_name), lambda p, j: called.append(j.job_id))):
        wait_until(lambda: broker.count(f"{queue}.dead") == 4)
        time.sleep(0.5)
    assert called == []
    dead = broker.get_all(f"{queue}.dead")
    assert {p.headers[jobs.DEAD_REASON] for p, _ in dead} == {"invalid"}
    reasons = sorted(p.headers[jobs.ERROR] for p, _ in dead)
    assert any("not valid JSON" in r for r in reasons)
    assert any("missing required fields: function, payload" in r for r in reasons)
    assert any("not a JSON object" in r for r in reasons)
    assert broker.count(queue) == 0


def test_job_longer_than_its_timeout_is_failed_not_left_hanging(broker, function_name):
    queue = broker.declare_function(function_name)
    publish(broker, function_name, payload={"seconds": 3})
    release = threading.Event()
    w = Worker(settings(broker, function_name, timeout=0.5, max_retries=0), lambda p, j: release.wait(5))
    with running(w):
        wait_until(lambda: broker.count(f"{queue}.dead") == 1, timeout=10)
        release.set()
    [(props, _)] = broker.get_all(f"{queue}.dead")
    assert props.headers[jobs.ERROR_TYPE] == "TimeoutError"


def test_heartbeats_flow_during_a_long_job(broker, function_name):
    queue = broker.declare_function(function_name)
    # heartbeat 2 s: a handler blocking the I/O thread for 7 s would get the connection
    # closed by the broker; off the I/O thread the job is acked on the same connection.
    s = settings(broker, function_name, amqp_urls=[broker.url("worker", "worker-pw", heartbeat="2")])
    done: list[str] = []
    publish(broker, function_name)
    with running(Worker(s, lambda p, j: (time.sleep(7), done.append(j.job_id)))) as w:
        wait_until(lambda: len(done) == 1, timeout=15)
        wait_until(lambda: broker.count(queue) == 0 and w.processed == 1, timeout=5)
        connection = w.connection
    assert connection is not None
    assert broker.count(f"{queue}.dead") == 0


def _worker_process(broker, function_name: str, record: Path, handler: str, **env: str) -> subprocess.Popen[bytes]:
    environ = dict(
        os.environ,
        PYTHONPATH=f"{TESTS}:{TESTS.parent / 'src'}",
        HURTIG_AMQP_URL=broker.url("worker", "worker-pw"),
        HURTIG_FUNCTION=function_name,
        HURTIG_QUEUE=f"jobs.{function_name}",
        HURTIG_HANDLER=handler,
        HURTIG_TEST_RECORD=str(record),
        HURTIG_HEALTH_FILE=str(record) + ".health",
        **env,
    )
    return subprocess.Popen([sys.executable, "-m", "hurtig.worker"], env=environ)


def test_sigterm_finishes_and_acks_the_job_in_flight(broker, function_name, tmp_path):
    queue = broker.declare_function(function_name)
    record = tmp_path / "record"
    [job_id] = publish(broker, function_name, payload={"seconds": 2})
    proc = _worker_process(broker, function_name, record, "handlers:slow", HURTIG_STOP_GRACE="20")
    try:
        wait_until(lambda: record.exists() and f"start {job_id}" in record.read_text(), timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert record.read_text().splitlines() == [f"start {job_id}", f"done {job_id}"]
    time.sleep(1)
    assert broker.count(queue) == 0  # acked: nothing comes back
    assert broker.count(f"{queue}.dead") == 0


def test_health_check(broker, function_name, tmp_path):
    broker.declare_function(function_name)
    record = tmp_path / "record"
    proc = _worker_process(broker, function_name, record, "handlers:record")
    try:
        env = dict(os.environ, HURTIG_HEALTH_FILE=str(record) + ".health", PYTHONPATH=str(TESTS.parent / "src"))
        # the containers' check (plugins/filter/worker_containers.py) and the worker's own flag
        for module in (["hurtig.health", "worker"], ["hurtig.worker", "--health"]):
            check = [sys.executable, "-m", *module]
            wait_until(lambda check=check: subprocess.run(check, check=False, env=env).returncode == 0, timeout=30)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_broker_restart_mid_stream_loses_nothing(broker, function_name, tmp_path):
    if broker.container is None:
        return
    queue = broker.declare_function(function_name)
    record = tmp_path / "record"
    ids = publish(broker, function_name, 300, payload={"seconds": 0.01})
    proc = _worker_process(broker, function_name, record, "handlers:slow", HURTIG_PREFETCH="5")
    try:
        wait_until(lambda: record.exists() and record.read_text().count("done") >= 50, timeout=60)
        broker.restart()
        wait_until(
            lambda: set(ids) <= {ln.split()[1] for ln in record.read_text().splitlines() if ln.startswith("done")},
            timeout=120,
        )
        wait_until(lambda: broker.count(queue) == 0, timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    done = Counter(ln.split()[1] for ln in record.read_text().splitlines() if ln.startswith("done"))
    assert set(done) == set(ids)
    duplicates = sum(n - 1 for n in done.values())
    assert duplicates <= 5  # at most the unacked jobs in flight (prefetch) at the restart
