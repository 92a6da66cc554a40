"""The autoscaler: its decisions, against a real broker (depth and consumers read by a user
without any permission) and the real Docker engine."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import pika
import pytest
from conftest import ROOT, Broker

from hurtig.autoscale import Broker as Access
from hurtig.autoscale import Controller, Function, Scale, share
from hurtig.dockerapi import Docker


def fn(**kw: object) -> Function:
    base = {"name": "f", "queue": "jobs.f", "prefetch": 1, "min": 1, "max": 6, "target_backlog_per_replica": 2,
            "scale_in_after_s": 5.0, "stop_timeout_s": 10, "node_index": 0, "node_count": 1,
            "containers": [f"hurtig-f-{i}" for i in range(1, 7)]}  # fmt: skip
    return Function.from_dict({**base, **kw})


def test_shares_add_up_to_the_total_and_fill_nodes_in_turn():
    for count in range(1, 6):
        for total in range(0, 40):
            shares = [share(total, k, count) for k in range(count)]
            assert sum(shares) == total
            assert max(shares) - min(shares) <= 1 and shares == sorted(shares, reverse=True)


def test_scale_out_at_once_capped_at_max():
    s = Scale(fn())
    assert s.observe(0, 0, 0.0) == 1  # starts from what runs, at least min
    assert s.observe(5, 1, 0.1) == 3  # (5 waiting + 1 in flight) / 2
    assert s.observe(40, 3, 0.2) == 6  # max
    assert s.observe(1, 6, 0.3) == 6  # never down while jobs wait


def test_scale_in_one_step_per_quiet_period_down_to_min():
    s = Scale(fn(scale_in_after_s=5.0))
    s.observe(20, 0, 0.0)
    assert s.total == 6
    assert [s.observe(0, 6, t) for t in (1.0, 5.9, 6.0, 10.9, 11.0)] == [6, 6, 5, 5, 4]
    assert s.observe(1, 4, 12.0) == 4  # a job waits: the quiet period starts over, no step
    assert [s.observe(0, 4, t) for t in (13.0, 17.9, 18.0)] == [4, 4, 3]
    for t in range(19, 60):
        s.observe(0, 3, float(t))
    assert s.total == 1  # min


def test_a_restarted_controller_resumes_from_the_consumers():
    assert Scale(fn()).observe(0, 4, 0.0) == 4
    assert Scale(fn()).observe(0, 9, 0.0) == 6
    assert Scale(fn(min=2)).observe(0, 0, 0.0) == 2
    assert Scale(fn()).observe(0, 1, 0.0, running_here=3) == 3  # two of them still reconnecting
    assert Scale(fn(node_count=2)).observe(0, 1, 0.0, running_here=2) == 4


def test_node_share():
    s = Scale(fn(node_index=1, node_count=2))
    s.observe(7, 0, 0.0)
    assert (s.total, s.here()) == (4, 2)
    s = Scale(fn(node_index=0, node_count=3))
    s.observe(2, 0, 0.0)
    assert (s.total, s.here()) == (1, 1)


class FakeDocker(Docker):
    """The engine's side: which containers exist and run (the real client is tested below)."""

    def __init__(self, names: list[str], running: int) -> None:
        self.state = {n: ("running" if i < running else "created") for i, n in enumerate(names)}
        self.calls: list[str] = []

    def states(self, label: str) -> dict[str, str]:
        return dict(self.state)

    def start(self, name: str) -> None:
        self.calls.append(f"start {name}")
        self.state[name] = "running"

    def stop(self, name: str, timeout_s: int) -> None:
        self.calls.append(f"stop {name}")
        self.state[name] = "exited"


def publish(broker: Broker, queue: str, n: int) -> None:
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()  # in the queue before the controller looks
    for i in range(n):
        ch.basic_publish("", queue, str(i).encode(), pika.BasicProperties(delivery_mode=2))
    conn.close()


def test_the_controller_reads_depth_with_a_user_without_permissions(broker: Broker, function_name: str, tmp_path):
    queue = broker.declare_function(function_name)
    f = fn(name=function_name, queue=queue, containers=[f"c{i}" for i in range(1, 7)], scale_in_after_s=0.5)
    docker = FakeDocker(list(f.containers), running=1)
    gone = fn(name="gone", queue="jobs.not-there")
    c = Controller([f, gone], Access([broker.url("autoscaler", "autoscaler-pw")]), docker)
    c.state_file = str(tmp_path / "state.json")
    c._connect()
    publish(broker, queue, 7)
    c.step(0.0)
    assert docker.calls == ["start c2", "start c3", "start c4"]  # ceil(7 / 2) = 4; the missing queue is skipped
    state = json.loads((tmp_path / "state.json").read_text())["functions"]
    assert state[function_name] == {"total": 4, "here": 4, "min": 1, "max": 6}
    broker.get_all(queue)
    c.step(1.0)
    c.step(1.6)
    time.sleep(0.2)  # the stop runs in a thread
    assert docker.calls[3:] == ["stop c4"]
    assert [n for n, s in docker.state.items() if s == "running"] == ["c1", "c2", "c3"]
    c.connection.close()


def test_the_broker_unreachable_changes_nothing():
    f = fn(containers=["c1", "c2"])
    docker = FakeDocker(list(f.containers), running=2)
    c = Controller([f], Access(["amqp://autoscaler:autoscaler-pw@127.0.0.1:1/hurtig"]), docker, interval=0.05)
    t = threading.Thread(target=c.run, daemon=True)
    t.start()
    time.sleep(1.5)
    c.done.set()
    t.join(5)
    assert docker.calls == [] and not t.is_alive()


@pytest.fixture
def sleepers(broker: Broker) -> Iterator[list[str]]:
    """Two created containers of the broker's image, labelled as hurtig's workers are."""
    image = subprocess.run([str(ROOT / "images" / "build.sh"), "tag", "rabbitmq-trixie"], check=True,
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    label = f"org.hurtig.test={uuid.uuid4().hex[:8]}"
    names = [f"hurtig-autoscale-test-{uuid.uuid4().hex[:6]}-{i}" for i in (1, 2)]
    for name in names:
        subprocess.run(["docker", "create", "--name", name, "--label", label, "--entrypoint", "sleep", image, "300"],
                       check=True, capture_output=True)  # fmt: skip
    yield [label, *names]
    subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False)


def test_docker_client_on_the_real_engine(sleepers: list[str]):
    label, one, two = sleepers
    d = Docker()
    assert d.states(label) == {one: "created", two: "created"}
    d.start(one)
    d.start(one)  # already running: fine
    assert d.states(label) == {one: "running", two: "created"}
    started = time.monotonic()
    d.stop(one, 1)  # sleep ignores SIGTERM as PID 1: killed after 1 s
    assert time.monotonic() - started < 5
    assert d.states(label)[one] == "exited"
