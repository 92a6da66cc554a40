"""hurtig.cork against a real RabbitMQ over TLS: concurrent publishes leave in few writes,
every one confirmed and in the queue, in order; a lone publish is not held back."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiormq
import pytest
from aiormq.connection import TLSTransportFactory
from pamqp import commands as spec

from hurtig import amqp, cork


class CountingTLS(TLSTransportFactory):
    """aiormq's TLS transport with the stream's writes counted (under the cork)."""

    def __init__(self) -> None:
        self.writes: list[int] = []

    async def create(self, url: Any, **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await super().create(url, **kwargs)
        write = writer.write

        def counted(data: bytes) -> None:
            self.writes.append(len(data))
            write(data)

        writer.write = counted  # type: ignore[method-assign]
        return reader, writer


def setup(broker) -> tuple[str, Any, str]:
    if broker.tls_dir is None:
        pytest.skip("needs the test broker's TLS listener")
    tls = broker.tls_dir
    context = amqp.ssl_context(amqp.Tls(str(tls / "ca.pem"), str(tls / "cert.pem"), str(tls / "key.pem")))
    queue = f"cork-{uuid.uuid4().hex[:8]}"
    conn = broker.connect()
    conn.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    conn.close()
    return f"amqps://admin:admin-pw@localhost:{broker.tls_port}/{broker.vhost}", context, queue


async def publish(url: str, context: Any, queue: str, n: int, concurrently: bool) -> tuple[list[int], float]:
    transport = CountingTLS()
    connection = await aiormq.connect(url, context=context, transport_factory=cork._Corked(transport))
    channel = await connection.channel(publisher_confirms=True)
    before = len(transport.writes)

    async def one(i: int) -> None:
        props = spec.Basic.Properties(delivery_mode=2, message_id=str(i))
        confirm = await channel.basic_publish(
            str(i).encode(), routing_key=queue, properties=props, mandatory=True, wait=False
        )
        assert isinstance(confirm, spec.Basic.Ack)

    t0 = time.monotonic()
    if concurrently:  # rounds of 8, as requests arrive at a serving process under load
        for start in range(0, n, 8):
            await asyncio.gather(*(one(i) for i in range(start, min(n, start + 8))))
    else:
        for i in range(n):
            await one(i)
    elapsed = time.monotonic() - t0
    writes = transport.writes[before:]
    await connection.close()
    return writes, elapsed


def test_concurrent_publishes_share_writes_and_all_arrive(broker):
    url, context, queue = setup(broker)
    writes, _ = asyncio.run(publish(url, context, queue, 200, concurrently=True))
    assert len(writes) <= 200 / 8 * 2, f"{len(writes)} writes for 200 publishes in 25 rounds of 8"
    got = broker.get_all(queue)
    assert sorted(int(body) for _, body in got) == list(range(200))
    assert all(props.delivery_mode == 2 for props, _ in got)


def test_a_lone_publish_is_not_held_back_and_order_is_kept(broker):
    url, context, queue = setup(broker)
    writes, elapsed = asyncio.run(publish(url, context, queue, 20, concurrently=False))
    assert len(writes) == 20  # one publish at a time: each leaves in its own write
    assert elapsed < 2, elapsed  # 20 confirms one after the other
    assert [body for _, body in broker.get_all(queue)] == [str(i).encode() for i in range(20)]
