"""The job API against a real RabbitMQ: 202 only after the broker's confirm."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hurtig import auth

SRC = Path(__file__).resolve().parent.parent / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


KEY = "tests-key-0123456789abcdefghij"  # allowed every function (the default keys file)


def write_keys(entries: list[dict]) -> Path:
    """A keys file as the api role writes it (hurtig.auth)."""
    path = Path(tempfile.mkdtemp()) / "api-keys.json"
    path.write_text(json.dumps(entries))
    return path


class Api:
    def __init__(
        self,
        broker,
        functions: dict[str, str],
        max_body: int = 4096,
        wait: bool = True,
        keys: list[dict] | None = None,
        key: str = KEY,
        **env: str,
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.key = key
        if keys is None:
            keys = [{"name": "tests", "sha256": [auth.digest(KEY)], "functions": ["*"]}]
        self.keys_file = write_keys(keys)
        self.env = dict(
            os.environ,
            PYTHONPATH=str(SRC),
            HURTIG_AMQP_URL=broker.url("api", "api-pw"),
            HURTIG_FUNCTIONS=json.dumps([{"name": n, "queue": q} for n, q in functions.items()]),
            HURTIG_API_PORT=str(self.port),
            HURTIG_API_WORKERS="1",
            HURTIG_API_MAX_BODY=str(max_body),
            HURTIG_CONFIRM_TIMEOUT="2",
            HURTIG_API_KEYS_FILE=str(self.keys_file),
        )
        self.env.update(env)
        self.proc = subprocess.Popen([sys.executable, "-m", "hurtig.api"], env=self.env)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            # refused before the socket is bound; accepted but unanswered while a process
            # waits (up to 10 s) for its first broker channel before it serves
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.2)
        raise AssertionError("API not ready")

    def post(self, function: str, body: object = None, data: bytes | None = None, **headers: str) -> requests.Response:
        if data is None:
            data = json.dumps(body if body is not None else {"n": 1}).encode()
        headers.setdefault("Content-Type", "application/json")
        if self.key:
            headers.setdefault("Authorization", f"Bearer {self.key}")
        return requests.post(f"{self.base}/v1/functions/{function}/jobs", data=data, headers=headers, timeout=10)

    def wait_accepting(self, function: str, timeout: float, why: str) -> None:
        """POST until a job is accepted (202); fail with `why` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.post(function).status_code != 202:
            assert time.monotonic() < deadline, why
            time.sleep(0.3)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


@pytest.fixture(scope="module")
def api_env(broker) -> Iterator[tuple[Api, str, str]]:
    name = f"api{uuid.uuid4().hex[:8]}"
    queue = broker.declare_function(name)
    api = Api(broker, {name: queue, "unbound": "jobs.unbound"})
    yield api, name, queue
    api.close()


def test_202_only_after_the_message_is_in_the_queue(api_env, broker):
    api, name, queue = api_env
    r = api.post(name, {"task": "Hello..."})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert r.headers["Location"] == f"/v1/functions/{name}/jobs/{job_id}"
    # the moment the 202 arrived, the persistent message was in the queue
    [(props, body)] = broker.get_all(queue)
    assert props.delivery_mode == 2
    assert props.message_id == job_id
    message = json.loads(body)
    assert message["payload"] == {"task": "Hello..."}
    assert message["function"] == name
    assert message["submitted_at"]


@pytest.mark.parametrize(
    ("path", "headers", "data", "status"),
    [
        ("nosuchfunction", {}, b"{}", 404),
        (None, {"Content-Type": "text/plain"}, b"{}", 415),
        (None, {}, b"{not json", 400),
        (None, {}, b'{"a": "\xff"}', 400),
        (None, {}, b'{"a": NaN}', 400),  # not JSON (RFC 8259), though Python's json reads it
        (None, {}, b'{"a": "\\ud800"}', 400),  # a lone surrogate: no UTF-8 for a worker to decode
        (None, {}, b"[" * 100_000 + b"]" * 100_000, 413),
        (None, {}, b"[" * 2000 + b"]" * 2000, 400),  # nested deeper than 64 levels
        (None, {}, b"[" * 65 + b"]" * 65, 400),
        (None, {}, b"x" * 5000, 413),
        (None, {"Idempotency-Key": "has spaces in it"}, b"{}", 400),
        ("unbound", {}, b"{}", 503),  # known function, but no queue bound: never a 202
    ],
)
def test_bad_input_gets_a_clear_error(api_env, broker, path, headers, data, status):
    api, name, queue = api_env
    r = api.post(path or name, data=data, **headers)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["error"]
    if status == 503:
        assert r.headers["Retry-After"]
    assert broker.count(queue) == 0


def test_idempotency_key_gives_the_same_job_id(api_env, broker):
    api, name, queue = api_env
    first = api.post(name, **{"Idempotency-Key": "order-42"}).json()["job_id"]
    again = api.post(name, **{"Idempotency-Key": "order-42"}).json()["job_id"]
    other = api.post(name, **{"Idempotency-Key": "order-43"}).json()["job_id"]
    plain = api.post(name).json()["job_id"]
    assert first == again != other
    assert plain not in (first, other)
    messages = broker.get_all(queue)
    # stateless API: a retried POST is enqueued again, with the same job id, so that an
    # idempotent handler applies it once
    assert [p.message_id for p, _ in messages] == [first, again, other, plain]
    assert json.loads(messages[0][1])["idempotency_key"] == "order-42"


def test_a_full_function_gets_503_alone_and_loses_nothing(broker):
    """Back-pressure per function: over its queue's bound (the role's policy) the broker
    refuses the job and the API answers 503 with Retry-After; another function keeps 202."""
    full, other = (f"bp{uuid.uuid4().hex[:8]}" for _ in range(2))
    queues = {full: broker.declare_function(full, max_ready=5), other: broker.declare_function(other)}
    api = Api(broker, queues)
    try:
        # a quorum queue refuses jobs once it holds more than max_ready: one sequential client
        # gets max_ready + 1 accepted
        accepted = [api.post(full, {"i": i}) for i in range(6)]
        assert [r.status_code for r in accepted] == [202] * 6
        for _ in range(3):
            r = api.post(full)
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "queue_full" and int(r.headers["Retry-After"]) > 0
            assert api.post(other).status_code == 202
        metrics = requests.get(f"{api.base}/metrics", timeout=5).text
        assert 'hurtig_api_jobs_rejected_total{reason="queue_full",status="503"} 3' in metrics
    finally:
        api.close()
    assert sorted(p.message_id for p, _ in broker.get_all(queues[full])) == sorted(r.json()["job_id"] for r in accepted)
    assert broker.count(queues[other]) == 3


def test_health_ready_metrics_openapi(api_env):
    api, name, _ = api_env
    assert requests.get(f"{api.base}/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{api.base}/readyz", timeout=5).status_code == 200
    metrics = requests.get(f"{api.base}/metrics", timeout=5).text
    assert f'hurtig_api_jobs_accepted_total{{function="{name}"}}' in metrics
    assert 'hurtig_api_jobs_rejected_total{reason="unknown_function",status="404"}' in metrics
    assert "hurtig_api_publish_seconds_count" in metrics
    doc = requests.get(f"{api.base}/openapi.json", timeout=5).json()
    assert "/v1/functions/{name}/jobs" in doc["paths"]


def test_every_scrape_sees_all_processes_of_the_instance(broker):
    """A scrape reaches one of the instance's processes; each answers with the figures of all
    of them (hurtig.metrics), so Prometheus sees counters that only go up."""
    name = f"api{uuid.uuid4().hex[:8]}"
    queue = broker.declare_function(name)
    api = Api(broker, {name: queue}, HURTIG_API_WORKERS="3")
    try:
        statuses = [api.post(name).status_code for _ in range(30)] + [api.post("nope").status_code for _ in range(6)]
        assert statuses == [202] * 30 + [404] * 6
        time.sleep(1.5)  # each process writes its figures every second
        seen = set()
        for _ in range(12):
            text = requests.get(f"{api.base}/metrics", timeout=5).text
            seen.add(
                (
                    f'hurtig_api_jobs_accepted_total{{function="{name}"}} 30' in text,
                    'hurtig_api_jobs_rejected_total{reason="unknown_function",status="404"} 6' in text,
                    "hurtig_api_publish_seconds_count 30" in text,
                    "hurtig_api_broker_ready 1" in text,
                )
            )
        assert seen == {(True, True, True, True)}
        assert "hurtig_api_processes 3" in text
    finally:
        api.close()


def test_broker_outage_gives_503_fast_and_recovers_without_restart(broker):
    if broker.container is None:
        pytest.skip("needs the test broker container")
    name = f"out{uuid.uuid4().hex[:8]}"
    queue = broker.declare_function(name)
    api = Api(broker, {name: queue})
    try:
        assert api.post(name).status_code == 202
        broker.stop()
        statuses = []
        for _ in range(10):
            t0 = time.monotonic()
            r = api.post(name)
            statuses.append(r.status_code)
            assert time.monotonic() - t0 < 3  # quick, never hangs
            assert r.status_code != 202
        assert set(statuses) == {503}
        assert requests.get(f"{api.base}/readyz", timeout=5).status_code == 503
        broker.start()
        api.wait_accepting(name, 60, "API did not recover after the broker came back")
    finally:
        api.close()
    assert broker.count(queue) >= 2


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    function=st.sampled_from(["known", "nosuch", "x" * 300, "..", "%00", "ünï"]),
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", "", "a/b"]),
    data=st.one_of(
        st.binary(max_size=6000),
        st.recursive(
            st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(),
            lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids),
        ).map(lambda v: json.dumps(v).encode()),
    ),
    key=st.one_of(
        st.none(),
        # anything a client can put in a header (latin-1, no line breaks, no outer spaces)
        st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=250).filter(
            lambda k: k == k.strip()
        ),
    ),
    authorization=st.one_of(
        st.just(f"Bearer {KEY}"),
        st.none(),
        st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=300).filter(
            lambda k: k == k.strip()
        ),
    ),
)
def test_fuzz_never_a_5xx_while_the_broker_is_up(api_env, function, content_type, data, key, authorization):
    api, name, _ = api_env
    api.wait_ready()  # an earlier test restarted the broker: 503 until reconnected is right
    path = name if function == "known" else function
    headers = {"Content-Type": content_type} | ({"Authorization": authorization} if authorization is not None else {})
    if key is not None:
        headers["Idempotency-Key"] = key
    r = requests.post(f"{api.base}/v1/functions/{path}/jobs", data=data, headers=headers, timeout=10)
    assert r.status_code in {202, 400, 401, 404, 405, 413, 415}, (r.status_code, r.text)
