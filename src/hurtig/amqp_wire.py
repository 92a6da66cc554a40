"""The wire side of hurtig.publisher: one AMQP 0-9-1 connection with one confirm channel,
as an asyncio protocol, that only publishes.

The profile of the API under load put its largest costs in the AMQP client's generic
layers (frame objects marshalled per job, a channel lock and a writer task per publish, a
timer per confirm, a scan of every pending confirm per multiple ack). Here the job path is
a few `struct` calls:

- a publish is three frames built from bytes prepared per function (`Basic.Publish` with
  mandatory set; a content header with content-type, delivery mode 2, message-id and
  timestamp; the body), appended to a buffer that leaves as one write at the end of the
  event-loop iteration: the jobs of concurrent requests share a TLS record and a system call;
- the broker's `Basic.Ack` and `Basic.Nack` (single or multiple) are parsed by hand and
  resolve the futures by delivery tag; a `Basic.Return` (unroutable) marks its message id,
  so that the ack that follows it fails the job: "unroutable", not accepted;
- one ticker per connection fails the confirms older than the timeout and keeps the
  heartbeats (sent when the connection is quiet, the connection dropped after two missed).

Everything else (the handshake, channel and connection close, a return's frames) goes
through pamqp's marshalling: rare frames, the library's code. The frames' bytes are in
hurtig.amqp_frames.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Any

from pamqp import commands as spec
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp import heartbeat as pheartbeat

from hurtig.amqp import Target
from hurtig.amqp_frames import (
    ACK,
    ACK_HEAD,
    ACK_METHOD,
    CHANNEL,
    CONTENT,
    FLAGS,
    FRAME_END,
    HEAD,
    JSON_TYPE,
    STAMP,
    Unavailable,
    frame,
    publish_frame,
    shortstr,
)

log = logging.getLogger("hurtig.publisher")
TICK_S = 0.2  # the ticker: confirm deadlines fail and heartbeats go out


class Connection(asyncio.Protocol):
    """One AMQP connection with one confirm channel (number 1)."""

    def __init__(self, exchange: str, confirm_timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.exchange = exchange
        self.confirm_timeout = confirm_timeout
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.out: list[bytes] = []
        self.replies: asyncio.Queue[Any] = asyncio.Queue()  # handshake and channel replies
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.channel_closed: asyncio.Future[None] = self.loop.create_future()
        self.channel_open = False
        self.frame_max = 131072
        self.heartbeat = 0
        self.last_sent = self.last_received = time.monotonic()
        self.tag = 0
        self.low = 1  # every tag below is confirmed
        self.pending: dict[int, tuple[asyncio.Future[None], str]] = {}
        self.deadlines: collections.deque[tuple[float, int]] = collections.deque()
        self.returned: set[str] = set()
        self.returning: bool | None = None  # a Basic.Return's header is next
        self.methods: dict[str, bytes] = {}
        self.ticker: asyncio.Task[None] | None = None

    # -- the hot path ------------------------------------------------------------------

    def publish(self, routing_key: str, message_id: str, body: bytes) -> asyncio.Future[None]:
        """Queue a persistent message; the future resolves on its confirm, or fails with
        Unavailable (nacked, returned, timed out, or the channel or connection lost)."""
        if not self.channel_open:
            raise Unavailable("broker_unavailable")
        method = self.methods.get(routing_key)
        if method is None:
            method = self.methods[routing_key] = publish_frame(self.exchange, routing_key)
        properties = JSON_TYPE + shortstr(message_id) + STAMP.pack(int(time.time()))
        header = frame(2, CONTENT.pack(60, 0, len(body), FLAGS) + properties)
        limit = self.frame_max - 8
        if len(body) <= limit:
            self._write(method + header + HEAD.pack(3, CHANNEL, len(body)) + body + FRAME_END)
        else:
            chunks = [frame(3, body[i : i + limit]) for i in range(0, len(body), limit)]
            self._write(method + header + b"".join(chunks))
        self.tag += 1
        future: asyncio.Future[None] = self.loop.create_future()
        self.pending[self.tag] = (future, message_id)
        self.deadlines.append((self.loop.time() + self.confirm_timeout, self.tag))
        return future

    def _write(self, data: bytes) -> None:
        if not self.out:
            self.loop.call_soon(self._flush)
        self.out.append(data)

    def _flush(self) -> None:
        if self.out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self.out))
            self.last_sent = time.monotonic()
        self.out.clear()

    def data_received(self, data: bytes) -> None:
        self.last_received = time.monotonic()
        buffer = self.buffer
        buffer += data
        pos, size = 0, len(buffer)
        while size - pos >= 8:
            kind, channel, length = HEAD.unpack_from(buffer, pos)
            end = pos + 7 + length
            if end >= size:
                break
            if buffer[end] != 0xCE:
                self._fail_connection("frame end missing")
                return
            if kind == 1 and length == 13 and buffer[pos : pos + 9] == ACK_HEAD:
                tag, bits = ACK.unpack_from(buffer, pos + 11)
                method = bytes(buffer[pos + 9 : pos + 11])
                self._confirm(tag, bool(bits & 1), None if method == ACK_METHOD else "queue_full")
            elif kind != 8:  # a heartbeat needs nothing but the time it came
                self._frame(channel, bytes(buffer[pos : end + 1]))
            pos = end + 1
        del buffer[:pos]

    def _confirm(self, tag: int, multiple: bool, failure: str | None) -> None:
        pending = self.pending
        tags = range(self.low, tag + 1) if multiple else (tag,)
        for t in tags:
            entry = pending.pop(t, None)
            if entry is None:
                continue
            future, message_id = entry
            reason = failure
            if self.returned and message_id in self.returned:
                self.returned.discard(message_id)
                reason = "unroutable"
            if not future.done():
                if reason is None:
                    future.set_result(None)
                else:
                    future.set_exception(Unavailable(reason))
        if multiple or tag == self.low:
            self.low = tag + 1

    # -- the rest ----------------------------------------------------------------------

    def _frame(self, channel: int, data: bytes) -> None:
        try:
            _, _, value = pframe.unmarshal(data)
        except Exception as exc:  # pamqp raises its own errors for bad frames
            self._fail_connection(f"unreadable frame: {exc!r}")
            return
        if isinstance(value, spec.Basic.Return):
            self.returning = True
        elif isinstance(value, pheader.ContentHeader):
            if self.returning and value.properties.message_id:
                self.returned.add(value.properties.message_id)
            self.returning = None
        elif isinstance(value, spec.Channel.Close):
            self._send(spec.Channel.CloseOk(), CHANNEL)
            self._channel_lost(f"channel closed by the broker: {value.reply_code} {value.reply_text}")
        elif isinstance(value, spec.Connection.Close):
            self._send(spec.Connection.CloseOk(), 0)
            self._fail_connection(f"connection closed by the broker: {value.reply_code} {value.reply_text}")
        elif isinstance(value, (spec.Connection.Blocked, spec.Connection.Unblocked)):
            log.warning("broker flow control", extra={"frame": value.name})
        elif value.name != "ContentBody":
            self.replies.put_nowait(value)

    def _send(self, value: Any, channel: int) -> None:
        self._write(pframe.marshal(value, channel))

    def _fail_pending(self, reason: str) -> None:
        pending, self.pending = self.pending, {}
        self.deadlines.clear()
        self.returned.clear()
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(Unavailable(reason))

    def _channel_lost(self, why: str) -> None:
        self.channel_open = False
        self._fail_pending("broker_unavailable")
        if not self.channel_closed.done():
            self.channel_closed.set_result(None)
        log.warning(why)

    def _fail_connection(self, why: str) -> None:
        self._flush()
        if self.transport is not None:
            self.transport.close()
        self.connection_lost(ConnectionError(why))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.channel_open = False
        self._fail_pending("broker_unavailable")
        for future in (self.channel_closed, self.closed):
            if not future.done():
                future.set_result(None)
        self.replies.put_nowait(ConnectionError(f"connection lost: {exc!r}"))
        if self.ticker is not None:
            self.ticker.cancel()

    async def _reply(self, kind: type, timeout: float = 10) -> Any:
        value = await asyncio.wait_for(self.replies.get(), timeout)
        if isinstance(value, Exception):
            raise value
        if not isinstance(value, kind):
            raise ConnectionError(f"expected {kind.__name__}, got {value!r}")
        return value

    async def handshake(self, target: Target) -> None:
        assert self.transport is not None
        self.transport.write(pheader.ProtocolHeader().marshal())
        await self._reply(spec.Connection.Start)
        properties = {
            "product": "hurtig-api",
            "connection_name": "hurtig-api",
            "capabilities": {
                "publisher_confirms": True,
                "basic.nack": True,
                "connection.blocked": True,
                "authentication_failure_close": True,
            },
        }
        credentials = f"\0{target.user}\0{target.password}"
        self._send(spec.Connection.StartOk(client_properties=properties, response=credentials), 0)
        tune = await self._reply(spec.Connection.Tune)
        self.frame_max = min(tune.frame_max or 131072, 131072)
        proposals = [h for h in (tune.heartbeat, target.heartbeat) if h]
        self.heartbeat = min(proposals) if proposals and target.heartbeat else 0
        self._send(spec.Connection.TuneOk(channel_max=1, frame_max=self.frame_max, heartbeat=self.heartbeat), 0)
        self._send(spec.Connection.Open(virtual_host=target.vhost), 0)
        await self._reply(spec.Connection.OpenOk)
        self.ticker = asyncio.create_task(self._tick())

    async def open_channel(self) -> None:
        self.tag, self.low = 0, 1
        self.channel_closed = self.loop.create_future()
        self._send(spec.Channel.Open(), CHANNEL)
        await self._reply(spec.Channel.OpenOk)
        self._send(spec.Confirm.Select(), CHANNEL)
        await self._reply(spec.Confirm.SelectOk)
        self.channel_open = True

    async def _tick(self) -> None:
        """Confirms past their deadline fail; heartbeats go out and are expected in."""
        while True:
            await asyncio.sleep(TICK_S)
            now = self.loop.time()
            deadlines, pending = self.deadlines, self.pending
            while deadlines and (deadlines[0][1] not in pending or deadlines[0][0] <= now):
                _, tag = deadlines.popleft()
                entry = pending.pop(tag, None)
                if entry is not None and not entry[0].done():
                    entry[0].set_exception(Unavailable("confirm_timeout"))
            if self.heartbeat:
                wall = time.monotonic()
                if wall - self.last_received > 2 * self.heartbeat:
                    self._fail_connection("no heartbeat from the broker")
                    return
                if wall - self.last_sent > self.heartbeat / 2:
                    self._send(pheartbeat.Heartbeat(), 0)

    async def close(self) -> None:
        if self.transport is None or self.closed.done():
            return
        self._send(spec.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0), 0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._reply(spec.Connection.CloseOk), 2)
        self.transport.close()
