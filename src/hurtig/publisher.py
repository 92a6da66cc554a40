"""The API's publisher: persistent messages on a confirm channel, a future per message.

One connection and one confirm channel per process (hurtig.amqp_wire: a lean AMQP 0-9-1
client that only publishes), reconnected with backoff in the background, the next broker of
the list after a failure. A channel the broker closes (a publish to a deleted exchange) is
reopened on the same connection; any failure fails the jobs awaiting their confirm with
`Unavailable`: the API answers 503, never 202.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from hurtig import amqp
from hurtig.amqp_wire import Connection, Unavailable

__all__ = ["Brokers", "Publisher", "Unavailable"]

log = logging.getLogger("hurtig.publisher")


@dataclass(frozen=True)
class Brokers:
    """Where and how to publish: the broker URLs (`{password}` stands for the password
    file's content, hurtig.amqp), tried in turn."""

    urls: list[str]
    exchange: str
    confirm_timeout: float
    password_file: str | None = None
    tls: amqp.Tls | None = None
    backoff_max: float = 10.0


class Publisher:
    """A connection and its confirm channel, kept alive in the background."""

    def __init__(self, brokers: Brokers) -> None:
        self.b = brokers
        self.connection: Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def ready(self) -> bool:
        return self.connection is not None and self.connection.channel_open

    def publish(self, routing_key: str, message_id: str, body: bytes) -> asyncio.Future[None]:
        """Raises Unavailable at once without a channel; else await the returned future."""
        if self.connection is None:
            raise Unavailable("broker_unavailable")
        return self.connection.publish(routing_key, message_id, body)

    async def start(self, wait: float = 10.0) -> None:
        """Connect in the background; wait (bounded) for the first channel, so that a process
        (re)started while the broker is up accepts requests only once it can publish."""
        self._task = asyncio.create_task(self._keep_connected())
        deadline = time.monotonic() + wait
        while not self.ready and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._closing = True
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()

    async def _connect(self, url: str) -> Connection:
        target = amqp.Target.parse(amqp.resolve(url, self.b.password_file))  # a rotated password is read here
        context = amqp.ssl_context(self.b.tls) if target.tls and self.b.tls else None  # files read here too
        if target.tls and context is None:
            raise ConnectionError("amqps:// without a CA")
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(
                lambda: Connection(self.b.exchange, self.b.confirm_timeout),
                target.host,
                target.port,
                ssl=context,
                server_hostname=target.host if context else None,
            ),
            timeout=10,
        )
        try:
            await connection.handshake(target)
        except BaseException:
            if connection.transport is not None:
                connection.transport.close()
            raise
        log.info("broker connected", extra={"broker": target.host})
        return connection

    async def _keep_connected(self) -> None:
        delay, attempt = 0.2, 0
        while not self._closing:
            url = self.b.urls[attempt % len(self.b.urls)]
            attempt += 1
            try:
                connection = self.connection = await self._connect(url)
                delay = 0.2
                await self._keep_channel(connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("broker unavailable", extra={"error": repr(exc), "retry_in_s": round(delay, 2)})
            if self.connection is not None:
                with contextlib.suppress(Exception):
                    await self.connection.close()
                self.connection = None
            await asyncio.sleep(delay)
            delay = amqp.next_delay(delay, self.b.backoff_max)

    async def _keep_channel(self, connection: Connection) -> None:
        """Keep the confirm channel open until the connection closes: a channel the broker
        closed (an error on it, an operator's action) is reopened at once."""
        while not connection.closed.done():
            await connection.open_channel()
            await asyncio.wait([connection.closed, connection.channel_closed], return_when=asyncio.FIRST_COMPLETED)
            if not connection.closed.done():
                log.warning("channel closed by the broker; reopening it")
