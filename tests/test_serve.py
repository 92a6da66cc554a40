"""hurtig.serve accepts every connection waiting in the listening socket's queue when it
becomes readable, under uvloop as in the API's image (libuv accepts one per loop iteration)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import signal
import socket
import time

import pytest
import uvloop
from aiohttp import web

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


def test_a_burst_of_a_thousand_requests_starts_few_collections():
    """A serving process (serve.serve, forked as the API's supervisor does) answers 1,000
    requests sent at once on 1,000 connections; the collector's young generation starts
    at serve.YOUNG_OBJECTS, and the burst started 4 collections of it (21 at CPython's 2,000)."""

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"threshold": gc.get_threshold(), "young": gc.get_stats()[0]["collections"]})

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_get("/gc", stats)
        return app

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2100:  # 1,000 clients here, 1,000 connections in the forked process
        if hard != resource.RLIM_INFINITY and hard < 2100:
            pytest.skip(f"open files limited to {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2100, hard))
    listener = socket.create_server(("127.0.0.1", 0), backlog=serve.BACKLOG)
    pid = os.fork()
    if pid == 0:
        try:
            serve.serve(make_app, listener, drain=0)
        finally:
            os._exit(0)
    request = b"GET /gc HTTP/1.1\r\nHost: t\r\n\r\n"

    def ask(sockets: list[socket.socket]) -> list[dict]:
        for s in sockets:
            s.sendall(request)
        answers = []
        for s in sockets:
            data = b""
            while b"}" not in data:
                data += s.recv(4096)
            answers.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))
        return answers

    clients: list[socket.socket] = []
    try:
        clients.append(socket.create_connection(listener.getsockname()))
        first = ask(clients)[0]
        clients += [socket.create_connection(listener.getsockname()) for _ in range(1000)]
        time.sleep(0.5)  # every connection accepted
        ask(clients[1:])
        last = ask(clients[:1])[0]
    finally:
        for c in clients:
            c.close()
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        listener.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert first["threshold"][0] == serve.YOUNG_OBJECTS
    assert last["young"] - first["young"] <= 6
