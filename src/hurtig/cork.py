"""Publishes of concurrent requests written to the broker's socket together.

aiormq's writer task writes each publish (method, header and body frames) to the stream at
once: over TLS, that is a TLS record and a `send` system call per job. The profile of the
API under load showed these writes as its largest single cost after the HTTP response
itself. A corked stream buffers the writes of one event-loop iteration and writes them as
one: the jobs of the requests that loop iteration handled leave in one record and one call.
A write leaves in the callbacks of the same iteration (no timer); `drain()` and `close()`
flush first. The bytes are the same, in the same order.

For publishes to share a write they must not wait for each other: aiormq's
`basic_publish(wait=True)` (its default) holds the channel's lock until its frames are
written and drained, so one publish per loop iteration at most. With `wait=False` the lock
is released once the frames are queued (delivery tags still in queue order) and the
caller still awaits the broker's confirm; what the socket buffers is then bounded by the
publishes in flight, i.e. by the requests whose bodies the process holds anyway.

    connection = await aiormq.connect(url, context=ctx, transport_factory=cork.factory(url))
    confirm = await channel.basic_publish(body, ..., wait=False)
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from aiormq.connection import TCPTransportFactory, TLSTransportFactory, TransportFactory
from yarl import URL


def cork(writer: asyncio.StreamWriter) -> asyncio.StreamWriter:
    """Make `writer.write` buffer until the end of the current loop iteration."""
    loop = asyncio.get_running_loop()
    write, drain, close = writer.write, writer.drain, writer.close
    pending: list[bytes] = []

    def flush() -> None:
        if pending:
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            pending.clear()
            write(data)

    def corked_write(data: bytes | bytearray | memoryview) -> None:
        if not pending:
            loop.call_soon(flush)
        pending.append(bytes(data))

    async def corked_drain() -> None:
        flush()
        await drain()

    def corked_close() -> None:
        flush()
        close()

    writer.write = corked_write  # type: ignore[method-assign]
    writer.drain = corked_drain  # type: ignore[method-assign]
    writer.close = corked_close  # type: ignore[method-assign]
    return writer


class _Corked(TransportFactory):
    def __init__(self, inner: TransportFactory) -> None:
        self.inner = inner

    async def create(self, url: URL, **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await self.inner.create(url, **kwargs)
        return reader, cork(writer)


def factory(url: str) -> TransportFactory:
    """aiormq's transport for the URL's scheme (TLS for amqps://), corked."""
    return _Corked(TLSTransportFactory() if urlsplit(url).scheme == "amqps" else TCPTransportFactory())
