"""The worker runtime: runs one function by consuming its queue with pika.

- manual ack, only after the handler succeeded (or the job was handed to the retry or
  dead-letter exchange with a publisher confirm); basic_qos(prefetch);
- handlers run in a thread pool, off the connection's I/O thread, so heartbeats keep
  flowing during long jobs; results come back with add_callback_threadsafe;
- a job longer than its timeout is failed (retried or dead-lettered), never left hanging;
- failures are retried through the retry exchange up to max_retries, then dead-lettered
  with the error in headers; a message that can never be a job is dead-lettered at once;
- reconnects with backoff; SIGTERM stops consuming, finishes and acks in-flight jobs
  within the grace period, then exits 0;
- its figures (jobs started, succeeded, failed, retried, dead-lettered, the handler's
  duration, jobs in flight) go to the node's metrics directory (hurtig.worker_metrics).

Configuration comes from the environment (see Settings.from_env).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from hurtig import amqp, jobs, logs
from hurtig.handler import Handler, JobContext, load_handler
from hurtig.health import healthy, worker_health_file
from hurtig.worker_metrics import WorkerMetrics
from hurtig.worker_settings import Settings

log = logging.getLogger("hurtig.worker")


@dataclass
class _InFlight:
    tag: int
    job: jobs.Job
    props: BasicProperties
    body: bytes
    started: float
    deadline: float
    future: Future[Any]
    done: bool = False  # acked, handed on, or its connection is gone
    timed_out: bool = False


class Worker:
    def __init__(self, settings: Settings, handler: Handler | None = None) -> None:
        self.s = settings
        self.handler = handler or load_handler(settings.handler)
        self.pool = ThreadPoolExecutor(max_workers=max(1, settings.prefetch), thread_name_prefix="job")
        self.stopping = threading.Event()
        self.connection: pika.BlockingConnection | None = None
        self.channel: BlockingChannel | None = None
        self.consumer_tag: str | None = None
        self.in_flight: dict[int, _InFlight] = {}
        self.abandoned = 0  # handler threads that outlived their timeout
        self.processed = 0
        self.metrics = WorkerMetrics(settings.function, settings.metrics_dir, settings.metrics_name)
        self.metrics_written = 0.0

    # -- lifecycle ---------------------------------------------------------------------
    def request_stop(self, *_: object) -> None:
        if not self.stopping.is_set():
            log.info("stop requested", extra={"queue": self.s.queue, "in_flight": len(self.in_flight)})
            self.stopping.set()

    def run(self) -> int:
        delay = 0.5
        attempt = 0
        while not self.stopping.is_set():
            url = self.s.amqp_urls[attempt % len(self.s.amqp_urls)]
            attempt += 1
            try:
                self._connect(amqp.resolve(url, self.s.amqp_password_file))
                delay = 0.5
                self._consume()
                if self.stopping.is_set():
                    return self._drain()
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError, OSError) as exc:
                log.warning("broker connection lost", extra={"error": repr(exc), "retry_in_s": round(delay, 2)})
                self._forget_connection()
                if self.stopping.wait(delay):
                    break
                delay = amqp.next_delay(delay, self.s.backoff_max)
            if self.abandoned >= self.pool._max_workers:
                log.error("every handler thread is stuck past its timeout; exiting for a restart")
                return 3
        return 0

    def _connect(self, url: str) -> None:
        params = pika.URLParameters(url)
        params.heartbeat = params.heartbeat or 30
        params.blocked_connection_timeout = 60
        if params.ssl_options is not None and self.s.amqp_tls is not None:  # amqps://: our CA, files read now
            params.ssl_options = pika.SSLOptions(amqp.ssl_context(self.s.amqp_tls), server_hostname=params.host)
        self.connection = pika.BlockingConnection(params)
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.channel.basic_qos(prefetch_count=self.s.prefetch)
        self.consumer_tag = self.channel.basic_consume(self.s.queue, self._on_message, auto_ack=False)
        log.info("consuming", extra={"queue": self.s.queue, "prefetch": self.s.prefetch, "broker": params.host})

    def _forget_connection(self) -> None:
        # Unacked deliveries die with the connection: the broker redelivers them. Results of
        # handlers still running are dropped (their delivery tags are no longer valid).
        for item in self.in_flight.values():
            item.done = True
        self.in_flight.clear()
        conn, self.connection, self.channel = self.connection, None, None
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception:  # the connection is already broken
                log.debug("close after failure failed", exc_info=True)

    def _consume(self) -> None:
        assert self.connection is not None
        while not self.stopping.is_set():
            self.connection.process_data_events(time_limit=0.5)
            self._check_timeouts()
            if time.monotonic() - self.metrics_written >= 1.0:  # not at every delivery and ack
                self._touch_health()  # hurtig.health: up to 30 s old is alive
                self._write_metrics()
            if self.abandoned >= self.pool._max_workers:
                self.connection.process_data_events(time_limit=0)  # the acks queued meanwhile
                return

    def _drain(self) -> int:
        """Stop consuming, let in-flight jobs finish and be acked, close, exit 0."""
        assert self.connection is not None and self.channel is not None
        if self.consumer_tag:
            self.channel.basic_cancel(self.consumer_tag)
        deadline = time.monotonic() + self.s.stop_grace
        while self.in_flight and time.monotonic() < deadline:
            self.connection.process_data_events(time_limit=0.2)
            self._check_timeouts()
        left = len(self.in_flight)
        if left:
            log.warning("grace period over; unacked jobs go back to the queue", extra={"in_flight": left})
        self.connection.close()
        self.in_flight.clear()
        self._write_metrics()
        self.pool.shutdown(wait=False, cancel_futures=True)
        log.info("stopped", extra={"queue": self.s.queue, "processed": self.processed})
        return 0

    def _write_metrics(self) -> None:
        self.metrics.in_flight = len(self.in_flight)
        self.metrics.write()
        self.metrics_written = time.monotonic()

    def _touch_health(self) -> None:
        with contextlib.suppress(OSError):
            Path(self.s.health_file).touch()

    # -- messages ----------------------------------------------------------------------
    def _on_message(self, ch: BlockingChannel, method: Basic.Deliver, props: BasicProperties, body: bytes) -> None:
        attempt = int((props.headers or {}).get(jobs.ATTEMPT, 0))
        try:
            job = jobs.parse(body, attempt=attempt)
        except jobs.InvalidJob as exc:
            log.warning("invalid job dead-lettered", extra={"queue": self.s.queue, "reason": str(exc)})
            self._dead_letter(method.delivery_tag, props, body, "invalid", exc)
            self.metrics.count("dead_lettered")
            return
        if self.stopping.is_set():
            ch.basic_nack(method.delivery_tag, requeue=True)
            return
        now = time.monotonic()
        ctx = JobContext(job.job_id, job.function, attempt, job.submitted_at, job.idempotency_key)
        future = self.pool.submit(self.handler, job.payload, ctx)
        self.metrics.count("started")
        item = _InFlight(method.delivery_tag, job, props, body, now, now + self.s.timeout, future)
        self.in_flight[method.delivery_tag] = item
        conn = self.connection
        assert conn is not None
        future.add_done_callback(lambda _: self._schedule_finish(conn, item))

    def _schedule_finish(self, conn: pika.BlockingConnection, item: _InFlight) -> None:
        """Runs in the handler's thread: hand the result to the connection's I/O thread."""
        try:
            conn.add_callback_threadsafe(lambda: self._finish(item))
        except Exception:  # the connection is gone: the broker redelivers the job
            log.debug("result dropped, connection closed", extra={"job_id": item.job.job_id})

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for item in list(self.in_flight.values()):
            if not item.done and now > item.deadline:
                item.done = item.timed_out = True
                self.abandoned += 1
                self._failed(item, TimeoutError(f"job exceeded its timeout of {self.s.timeout:g} s"))

    def _finish(self, item: _InFlight) -> None:
        if item.timed_out:  # its thread is free again; the job was failed at the timeout
            self.abandoned -= 1
            return
        if item.done:  # the connection it came on is gone: the broker redelivers it
            return
        item.done = True
        exc = item.future.exception()
        if exc is None:
            self._ack(item.tag)
            self.metrics.count("succeeded")
            self.metrics.observe(time.monotonic() - item.started)
            self._log_outcome(item, "ok")
        else:
            self._failed(item, exc)

    def _failed(self, item: _InFlight, exc: BaseException) -> None:
        self.metrics.count("failed")
        self.metrics.observe(time.monotonic() - item.started)
        if isinstance(exc, jobs.Rejected):  # can never succeed: no retry
            self._dead_letter(item.tag, item.props, item.body, "rejected", exc)
            self.metrics.count("dead_lettered")
            self._log_outcome(item, "dead", exc)
        elif item.job.attempt < self.s.max_retries:
            headers = jobs.retry_headers(item.props.headers, item.job.attempt + 1, exc)
            self._publish(self.s.retry_exchange, item.props, item.body, headers)
            self._ack(item.tag)
            self.metrics.count("retried")
            self._log_outcome(item, "retry", exc)
        else:
            self._dead_letter(item.tag, item.props, item.body, "max_retries", exc)
            self.metrics.count("dead_lettered")
            self._log_outcome(item, "dead", exc)

    def _dead_letter(self, tag: int, props: BasicProperties, body: bytes, reason: str, exc: BaseException) -> None:
        self._publish(self.s.dead_exchange, props, body, jobs.dead_headers(props.headers, reason, exc))
        self._ack(tag)

    def _publish(self, exchange: str, props: BasicProperties, body: bytes, headers: dict[str, Any]) -> None:
        assert self.channel is not None
        self.channel.basic_publish(
            exchange,
            self.s.function,
            body,
            BasicProperties(
                delivery_mode=2,
                content_type=props.content_type or "application/json",
                message_id=props.message_id,
                timestamp=props.timestamp,
                headers=headers,
            ),
            mandatory=True,
        )

    def _ack(self, tag: int) -> None:
        assert self.channel is not None
        self.in_flight.pop(tag, None)
        # Queued, not flushed: the I/O loop (_consume, _drain) writes it on its next turn.
        # BlockingChannel.basic_ack would turn the loop once more for every ack. Frames leave
        # in order: an ack never overtakes the confirmed publish before it, nor close().
        self.channel._impl.basic_ack(tag)  # pika has no public ack without the extra turn
        self.processed += 1

    def _log_outcome(self, item: _InFlight, outcome: str, exc: BaseException | None = None) -> None:
        extra = {
            "job_id": item.job.job_id,
            "queue": self.s.queue,
            "attempt": item.job.attempt,
            "duration_ms": round((time.monotonic() - item.started) * 1000, 2),
            "outcome": outcome,
        }
        if exc is not None:
            extra["error"] = jobs.short_error(exc)
        log.log(logging.INFO if outcome == "ok" else logging.WARNING, "job " + outcome, extra=extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hurtig-worker", description=__doc__.splitlines()[0])
    parser.add_argument("--health", action="store_true", help="exit 0 when the worker loop is alive")
    args = parser.parse_args(argv)
    if args.health:
        return 0 if healthy(worker_health_file()) else 1
    logs.setup(os.environ.get("HURTIG_LOG_LEVEL", "INFO"))
    worker = Worker(Settings.from_env())
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
