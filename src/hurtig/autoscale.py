"""hurtig-autoscaler: starts and stops a worker node's pre-created containers from the depth
of their queues, polled every HURTIG_AUTOSCALE_INTERVAL seconds (0.25 by default).

For each function with `autoscale`, every node computes the same total from what the broker
says (a passive queue declare, allowed to a user without any permission: the ready count and
the consumer count) and runs its own share of it; no coordinator, no messages between nodes:

- jobs wait (ready > 0): every consumer holds `prefetch` jobs, so the backlog is
  ready + consumers x prefetch; the total becomes ceil(backlog / target_backlog_per_replica)
  if that is more (at most `max`), at once;
- nothing waits for scale_in_after_s seconds in a row: the total drops by one (not below
  `min`) and the quiet period starts again. One step per quiet period, and no scale-in
  while anything waits, so a steady load settles where its jobs no longer wait, and a
  total that is enough is never given up for one that is not;
- node k of n (the inventory order of the function's group) runs total // n, plus one if
  k < total % n: the first replicas of every node, then the next, so that the shares add
  up to the total on every node's count.

Starting containers takes the lowest numbers first, stopping the highest (SIGTERM: jobs in
flight finish within the function's timeout). A restarted controller resumes from the
consumers the broker counts (or the containers running here, if more: they may be
reconnecting). With the broker unreachable it changes nothing. A node that is
down runs nothing of its share: the others do not take it over (the total reflects the
backlog, not the nodes).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions

from hurtig import amqp, logs
from hurtig.dockerapi import Docker, DockerError

log = logging.getLogger("hurtig.autoscale")


def share(total: int, index: int, count: int) -> int:
    """The replicas node `index` (0-based) of `count` runs when a function wants `total`."""
    return total // count + (1 if index < total % count else 0)


@dataclass(frozen=True)
class Function:
    name: str
    queue: str
    prefetch: int
    min: int
    max: int
    target_backlog_per_replica: int
    scale_in_after_s: float
    stop_timeout_s: int
    node_index: int
    node_count: int
    containers: tuple[str, ...]  # this node's, in start order

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Function:
        return cls(**{**d, "containers": tuple(d["containers"])})


class Scale:
    """The total replicas of one function, from what the broker says (see the module)."""

    def __init__(self, fn: Function) -> None:
        self.fn = fn
        self.total: int | None = None  # unknown until the broker answered once
        self.quiet_since: float | None = None

    def observe(self, ready: int, consumers: int, now: float, running_here: int = 0) -> int:
        fn = self.fn
        if self.total is None:  # (re)started: what runs now (containers not connected included)
            self.total = max(fn.min, min(fn.max, max(consumers, running_here * fn.node_count)))
        if ready > 0:
            self.quiet_since = None
            need = math.ceil((ready + consumers * fn.prefetch) / fn.target_backlog_per_replica)
            self.total = max(self.total, min(fn.max, need))
        elif self.quiet_since is None:
            self.quiet_since = now
        elif now - self.quiet_since >= fn.scale_in_after_s:
            self.total = max(fn.min, self.total - 1)
            self.quiet_since = now
        return self.total

    def here(self) -> int:
        return share(self.total or 0, self.fn.node_index, self.fn.node_count)


@dataclass(frozen=True)
class Broker:
    urls: list[str]
    password_file: str | None = None
    tls: amqp.Tls | None = None


class Controller:
    def __init__(self, functions: list[Function], broker: Broker, docker: Docker, interval: float = 0.25) -> None:
        self.scales = [Scale(f) for f in functions]
        self.broker, self.docker, self.interval = broker, docker, interval
        self.state_file: str | None = None
        self.written: dict[str, Any] = {}
        self.connection: pika.BlockingConnection | None = None
        self.channel: Any = None
        self.stopping: set[str] = set()  # containers being stopped (in threads)
        self.lock = threading.Lock()
        self.done = threading.Event()

    def _connect(self) -> None:
        for url in self.broker.urls:
            params = pika.URLParameters(amqp.resolve(url, self.broker.password_file))
            if params.ssl_options is not None and self.broker.tls is not None:
                params.ssl_options = pika.SSLOptions(amqp.ssl_context(self.broker.tls), server_hostname=params.host)
            try:
                self.connection = pika.BlockingConnection(params)
                self.channel = self.connection.channel()
                log.info("connected", extra={"broker": params.host})
                return
            except (pika.exceptions.AMQPError, OSError) as exc:
                log.warning("broker unreachable", extra={"broker": params.host, "error": str(exc)})
        raise ConnectionError("no broker answered")

    def _depth(self, queue: str) -> tuple[int, int] | None:
        """(ready, consumers), or None when the queue is not there (the channel is reopened)."""
        assert self.connection is not None
        if self.channel is None or not self.channel.is_open:
            self.channel = self.connection.channel()
        try:
            ok = self.channel.queue_declare(queue, passive=True).method
        except pika.exceptions.ChannelClosedByBroker as exc:
            log.warning("queue not readable", extra={"queue": queue, "error": str(exc)})
            self.channel = None
            return None
        return ok.message_count, ok.consumer_count

    def step(self, now: float) -> None:
        """One poll: read every queue, then start or stop this node's containers."""
        depths = {s.fn.queue: self._depth(s.fn.queue) for s in self.scales}
        try:
            states = self.docker.states("org.hurtig.role=worker")
        except (DockerError, OSError) as exc:  # the engine restarts: try again at the next poll
            log.warning("docker unreachable", extra={"error": str(exc)})
            return
        for scale in self.scales:
            depth = depths[scale.fn.queue]
            if depth is None:
                continue
            before = scale.total
            running_here = sum(states.get(n) == "running" for n in scale.fn.containers)
            total = scale.observe(*depth, now, running_here)
            if total != before:
                log.info(
                    "scale",
                    extra={
                        "function": scale.fn.name,
                        "from": before,
                        "to": total,
                        "ready": depth[0],
                        "consumers": depth[1],
                        "here": scale.here(),
                    },
                )
            try:
                self._apply(scale, states)
            except (DockerError, OSError) as exc:
                log.warning("docker refused", extra={"function": scale.fn.name, "error": str(exc)})
        self._write_state()

    def _write_state(self) -> None:
        """What each function wants, for check.yml (written when it changes, by rename)."""
        state = {s.fn.name: {"total": s.total, "here": s.here(), "min": s.fn.min, "max": s.fn.max} for s in self.scales}
        if not self.state_file or state == self.written:
            return
        tmp = f"{self.state_file}.tmp"
        with open(tmp, "w") as f:
            json.dump({"functions": state, "at": datetime.now(UTC).isoformat(timespec="milliseconds")}, f)
        os.replace(tmp, self.state_file)
        self.written = state

    def _apply(self, scale: Scale, states: dict[str, str]) -> None:
        want = scale.here()
        names = [n for n in scale.fn.containers if n in states]
        with self.lock:
            running = [n for n in names if states[n] in ("running", "restarting") and n not in self.stopping]
        if len(running) < want:
            for name in [n for n in names if n not in running and n not in self.stopping][: want - len(running)]:
                self.docker.start(name)
                log.info("started", extra={"function": scale.fn.name, "container": name})
        for name in running[want:][::-1]:
            with self.lock:
                self.stopping.add(name)
            threading.Thread(target=self._stop, args=(scale.fn, name), daemon=True).start()

    def _stop(self, fn: Function, name: str) -> None:
        try:
            log.info("stopping", extra={"function": fn.name, "container": name})
            self.docker.stop(name, fn.stop_timeout_s)
        except (DockerError, OSError) as exc:
            log.warning("stop failed", extra={"container": name, "error": str(exc)})
        finally:
            with self.lock:
                self.stopping.discard(name)

    def run(self) -> int:
        delay = 0.5
        while not self.done.is_set():
            try:
                if self.connection is None or not self.connection.is_open:
                    self._connect()
                    delay = 0.5
                self.step(time.monotonic())
                assert self.connection is not None
                self.connection.process_data_events(time_limit=self.interval)
            except (pika.exceptions.AMQPError, ConnectionError, OSError) as exc:
                # keep every container as it is until the broker answers again
                log.warning("poll failed; nothing changes", extra={"error": str(exc)})
                self.connection, self.channel = None, None
                self.done.wait(delay)
                delay = amqp.next_delay(delay, 5.0)
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hurtig-autoscaler", description=__doc__.split("\n")[0])
    parser.parse_args(argv)
    env = dict(os.environ)
    logs.setup(env.get("HURTIG_LOG_LEVEL", "INFO"))
    urls = amqp.urls_from_env(env)
    if not urls:
        raise SystemExit("hurtig-autoscaler: set HURTIG_AMQP_URLS")
    functions = [Function.from_dict(d) for d in json.loads(env.get("HURTIG_AUTOSCALE_FUNCTIONS", "[]"))]
    controller = Controller(
        functions,
        Broker(urls, env.get("HURTIG_AMQP_PASSWORD_FILE") or None, amqp.tls_from_env(env, urls, "hurtig-autoscaler")),
        Docker(env.get("HURTIG_DOCKER_SOCKET", "/var/run/docker.sock")),
        float(env.get("HURTIG_AUTOSCALE_INTERVAL", "0.25")),
    )
    controller.state_file = env.get("HURTIG_AUTOSCALE_STATE_FILE") or None
    signal.signal(signal.SIGTERM, lambda *_: controller.done.set())
    log.info("autoscaling", extra={"functions": [f.name for f in functions], "interval": controller.interval})
    return controller.run()


if __name__ == "__main__":
    sys.exit(main())
