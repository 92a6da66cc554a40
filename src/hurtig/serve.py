"""The API's process model: a parent that forks serving processes on one listening socket
and replaces any that dies, and a serving loop that stops without a close race.

Stopping (SIGTERM from `docker stop`): the listening socket is closed in every process
first, so a new connection is refused and nginx passes the request to the next API node
(safe for a POST: nothing was sent). The open keep-alive connections are not closed at
once, as aiohttp's shutdown would: nginx may be writing a request on one at that moment,
and it never retries a POST that it sent (a 502). They stay open for `drain` seconds, one
more than nginx's upstream keepalive_timeout, every response marked `Connection: close`;
by then nginx has closed each of them itself, idle or after its last answer. Only then does
aiohttp's shutdown run (in-flight requests finish, the publisher closes).

Accepting: every connection waiting in the listening socket's queue at once (accept_pending),
not one per event-loop iteration as libuv (uvloop) does since 1.45. With thousands of clients
nginx opens a new upstream connection per concurrent request; one accept per iteration of a
loop busy with a thousand connections left 500 of them queued for up to 28 s, each with a
request in it (4,096 clients on the staging stack, bench/http_cases.py).

Collecting: a serving process starts the collector's youngest generation at YOUNG_OBJECTS
new objects instead of CPython's 2,000. A request's objects are freed by reference counting
as it ends, so at a few dozen connections the collector never runs; but a loop iteration
with a thousand ready connections creates a thousand requests' objects before any ends,
and each such burst started a collection that walked all of them (177 in 8 s at 1,024
connections, about 4 µs of every request; docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("hurtig.api")

DRAINING = web.AppKey("draining", bool)
# The listening socket's queue of connections not yet accepted (capped by net.core.somaxconn):
# at a few thousand clients, a queue of 128 overflowed and nginx's connects timed out (2 s).
BACKLOG = 4096
YOUNG_OBJECTS = 10_000


def accept_pending(loop: asyncio.AbstractEventLoop, sock: socket.socket, factory: Callable[[], asyncio.Protocol],
                   connections: set[asyncio.Task[Any]]) -> None:  # fmt: skip
    """Accept every connection in the listening socket's queue (at most BACKLOG) and serve
    each with a protocol from the factory. Called when the socket is readable."""
    for _ in range(BACKLOG):
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:  # out of file descriptors or memory: try again in a second
            log.error("accept failed; pausing for a second", extra={"error": repr(exc)})
            loop.remove_reader(sock.fileno())
            loop.call_later(1, _resume, loop, sock, factory, connections)
            return
        conn.setblocking(False)
        task = loop.create_task(loop.connect_accepted_socket(factory, conn))
        connections.add(task)  # a reference until it is set up
        task.add_done_callback(connections.discard)


def _resume(loop: asyncio.AbstractEventLoop, sock: socket.socket, factory: Callable[[], asyncio.Protocol],
            connections: set[asyncio.Task[Any]]) -> None:  # fmt: skip
    if sock.fileno() >= 0:  # not closed by a stop meanwhile
        loop.add_reader(sock.fileno(), accept_pending, loop, sock, factory, connections)


async def _close_when_draining(request: web.Request, response: web.StreamResponse) -> None:
    if request.app[DRAINING]:  # the headers are prepared already: set both
        response.force_close()
        response.headers["Connection"] = "close"


async def _run(app: web.Application, sock: socket.socket, drain: float) -> None:
    app[DRAINING] = False
    app.on_response_prepare.append(_close_when_draining)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    assert runner.server is not None
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    setting_up: set[asyncio.Task[Any]] = set()
    loop.add_reader(sock.fileno(), accept_pending, loop, sock, runner.server, setting_up)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        app[DRAINING] = True
        loop.remove_reader(sock.fileno())
        sock.close()  # this process's copy of the listening socket
        await asyncio.sleep(drain)
    finally:
        await runner.cleanup()


def serve(make_app: Callable[[], web.Application], sock: socket.socket, drain: float) -> None:
    gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415 - optional speed-up

        uvloop.install()
    asyncio.run(_run(make_app(), sock, drain))


def supervise(child: Callable[[], None], sock: socket.socket, workers: int, grace: float) -> int:
    """Fork `workers` processes that run child() and replace any that dies (a crash must
    not leave the node with fewer processes until a restart). SIGTERM and SIGINT close the
    parent's copy of the listening socket and are passed on; a child still running `grace`
    seconds later is killed."""
    children: dict[int, float] = {}  # pid -> start time
    signalled: set[int] = set()
    stop_at: list[float] = []  # set by the signal handler

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            try:
                child()
            finally:
                os._exit(0)
        children[pid] = time.monotonic()

    signal.signal(signal.SIGTERM, lambda *_: stop_at.append(time.monotonic()))
    signal.signal(signal.SIGINT, lambda *_: stop_at.append(time.monotonic()))
    for _ in range(workers):
        spawn()
    while children:
        if stop_at:
            if sock.fileno() >= 0:
                sock.close()  # else the kernel keeps queueing connections nobody accepts
            late = time.monotonic() > stop_at[0] + grace
            for pid in children:
                if pid not in signalled or late:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL if late else signal.SIGTERM)
                    signalled.add(pid)
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.05)
            continue
        started = children.pop(pid, None)
        if started is None or stop_at:
            continue
        log.error("API process died; starting another", extra={"pid": pid, "status": status})
        if time.monotonic() - started < 1:  # crashing at start: do not spin
            time.sleep(1)
        spawn()
    return 0
