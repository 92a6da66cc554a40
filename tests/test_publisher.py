"""hurtig.publisher against a real RabbitMQ over TLS: concurrent publishes leave in few
writes, every one confirmed and in the queue, in order; a lone publish is not held back; a
body larger than a frame arrives whole; unroutable and refused jobs fail. The confirm
parser and the timeout are also driven frame by frame (acks in any grouping, a timeout)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from pamqp import commands as spec
from pamqp import frame as pframe

from hurtig import amqp, jobs
from hurtig.amqp_wire import Connection
from hurtig.publisher import Brokers, Publisher, Unavailable


class CountingTransport:
    """The connection's transport with its writes counted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes: list[int] = []

    def write(self, data: bytes) -> None:
        self.writes.append(len(data))
        self.inner.write(data)

    def is_closing(self) -> bool:
        return self.inner.is_closing()

    def close(self) -> None:
        self.inner.close()


def tls_brokers(broker, exchange: str = "") -> Brokers:
    if broker.tls_dir is None:
        pytest.skip("needs the test broker's TLS listener")
    tls = broker.tls_dir
    url = f"amqps://admin:admin-pw@localhost:{broker.tls_port}/{broker.vhost}"
    return Brokers([url], exchange, 5.0, tls=amqp.Tls(str(tls / "ca.pem"), str(tls / "cert.pem"), str(tls / "key.pem")))


def quorum_queue(broker, **arguments: Any) -> str:
    queue = f"pub-{uuid.uuid4().hex[:8]}"
    conn = broker.connect()
    conn.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum", **arguments})
    conn.close()
    return queue


async def started(brokers: Brokers) -> Publisher:
    publisher = Publisher(brokers)
    await publisher.start()
    assert publisher.ready
    return publisher


def test_concurrent_publishes_share_writes_and_all_arrive_in_order(broker):
    queue = quorum_queue(broker)

    async def run() -> list[int]:
        publisher = await started(tls_brokers(broker))
        assert publisher.connection is not None
        counting = CountingTransport(publisher.connection.transport)
        publisher.connection.transport = counting  # type: ignore[assignment]
        for start in range(0, 400, 8):  # rounds of 8, as requests arrive under load
            await asyncio.gather(*(publisher.publish(queue, str(i), str(i).encode()) for i in range(start, start + 8)))
        await publisher.stop()
        return counting.writes

    writes = asyncio.run(run())
    assert len(writes) <= 400 / 8 + 5, f"{len(writes)} writes for 50 rounds of 8 publishes"
    bodies = [body for _, body in broker.get_all(queue)]
    assert bodies == [str(i).encode() for i in range(400)]


def test_a_lone_publish_is_not_held_back_and_big_bodies_arrive_whole(broker):
    queue = quorum_queue(broker)
    big = json.dumps({"blob": "x" * 300_000}).encode()  # more than two frames of 128 KiB

    async def run() -> list[float]:
        publisher = await started(tls_brokers(broker))
        times = []
        for i in range(20):
            t0 = time.monotonic()
            await publisher.publish(queue, f"m{i}", b"{}")
            times.append(time.monotonic() - t0)
        await publisher.publish(queue, "big", big)
        await publisher.stop()
        return times

    times = asyncio.run(run())
    assert sorted(times)[10] < 0.05, f"median publish-to-confirm {sorted(times)[10]:.3f} s"
    messages = broker.get_all(queue)
    assert len(messages) == 21
    props, body = messages[-1]
    assert body == big
    assert props.message_id == "big"
    assert props.delivery_mode == 2
    assert props.content_type == "application/json"
    assert abs(props.timestamp - time.time()) < 60


def test_unroutable_and_refused_jobs_fail_and_the_channel_goes_on(broker):
    full = quorum_queue(broker, **{"x-max-length": 1, "x-overflow": "reject-publish"})

    async def run() -> list[str]:
        publisher = await started(tls_brokers(broker))
        outcomes = []
        for routing_key in ["no-such-queue", full, full, full, "no-such-queue", full]:
            try:
                await publisher.publish(routing_key, uuid.uuid4().hex, b"{}")
                outcomes.append("ack")
            except Unavailable as exc:
                outcomes.append(exc.reason)
        assert publisher.ready
        await publisher.stop()
        return outcomes

    outcomes = asyncio.run(run())
    # a quorum queue may take one message over its bound before it refuses (its state
    # machine applies the limit after the append that reaches it)
    assert outcomes[:2] == ["unroutable", "ack"]
    assert outcomes[3:] == ["queue_full", "unroutable", "queue_full"]
    assert broker.count(full) == outcomes.count("ack")


class FakeTransport:
    def __init__(self) -> None:
        self.data: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.data.append(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def open_connection(timeout: float = 5.0) -> Connection:
    connection = Connection("hurtig.jobs", timeout)
    connection.connection_made(FakeTransport())  # type: ignore[arg-type]
    connection.channel_open = True
    return connection


def ack(tag: int, multiple: bool = False) -> bytes:
    return pframe.marshal(spec.Basic.Ack(delivery_tag=tag, multiple=multiple), 1)


def nack(tag: int, multiple: bool = False) -> bytes:
    return pframe.marshal(spec.Basic.Nack(delivery_tag=tag, multiple=multiple, requeue=False), 1)


def test_confirms_in_any_grouping_and_split_across_reads():
    async def run() -> list[str]:
        c = open_connection()
        futures = [c.publish("f", str(i), b"{}") for i in range(8)]
        stream = ack(2, multiple=True) + ack(4) + nack(3) + ack(6, multiple=True) + nack(8, multiple=True)
        for i in range(0, len(stream), 5):  # the broker's bytes in arbitrary pieces
            c.data_received(stream[i : i + 5])
        return ["ack" if f.exception() is None else f.exception().reason for f in futures]  # type: ignore[union-attr]

    assert asyncio.run(run()) == ["ack", "ack", "queue_full", "ack", "ack", "ack", "queue_full", "queue_full"]


def test_a_confirm_that_does_not_come_fails_after_the_timeout_and_a_lost_connection_fails_all():
    async def run() -> tuple[str, float, str]:
        c = open_connection(timeout=0.3)
        c.ticker = asyncio.create_task(c._tick())
        t0 = time.monotonic()
        late = c.publish("f", "late", b"{}")
        with pytest.raises(Unavailable) as timed_out:
            await late
        waited = time.monotonic() - t0
        lost = c.publish("f", "lost", b"{}")
        c.connection_lost(ConnectionResetError())
        with pytest.raises(Unavailable) as failed:
            await lost
        with pytest.raises(Unavailable):
            c.publish("f", "after", b"{}")
        return timed_out.value.reason, waited, failed.value.reason

    reason, waited, lost = asyncio.run(run())
    assert reason == "confirm_timeout"
    assert 0.3 <= waited < 0.8
    assert lost == "broker_unavailable"


def test_the_envelope_is_the_job_encoded_once():
    raw = b' {"task": "Hello", "n": [1, 2.5, null], "s": "\xc3\xa6\\u00f8\\"x"} '
    for key in (None, 'a"b\\c'):
        spliced = jobs.envelope("id-1", b'"record"', raw, "2026-11-29T05:00:00.000001+00:00", key)
        encoded = jobs.Job("id-1", "record", json.loads(raw), "2026-11-29T05:00:00.000001+00:00", key).to_body()
        assert json.loads(spliced) == json.loads(encoded)
        assert jobs.parse(spliced) == jobs.parse(encoded)
