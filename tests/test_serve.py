"""hurtig.serve accepts every connection waiting in the listening socket's queue when it
becomes readable, under uvloop as in the API's image (libuv accepts one per loop iteration)."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop

from hurtig import serve


def test_one_readiness_accepts_every_waiting_connection():
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0), backlog=serve.BACKLOG)
        listener.setblocking(False)
        clients = [socket.create_connection(listener.getsockname()) for _ in range(300)]
        made: list[asyncio.BaseTransport] = []

        class Protocol(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                made.append(transport)

        setting_up: set[asyncio.Task] = set()
        serve.accept_pending(loop, listener, Protocol, setting_up)
        taken = len(setting_up)
        with pytest.raises(BlockingIOError):  # the queue is empty
            listener.accept()
        await asyncio.gather(*setting_up)
        for t in made:
            t.close()
        for c in clients:
            c.close()
        listener.close()
        return taken, len(made)

    assert uvloop.run(main()) == (300, 300)
