"""Publish-with-confirm throughput of the Python AMQP clients on PyPI, in one run.

Why the API has a publisher of its own (hurtig.publisher): it publishes persistent messages
with mandatory routing and waits for every confirm, so the AMQP client's per-message cost
bounds the API. This script starts the test broker (images/build.sh rabbitmq-trixie) on a
loopback port and measures, for the same N persistent messages to one durable quorum queue:

- pika (BlockingConnection, confirm per message: the baseline),
- aio-pika (robust channel, C concurrent publishers),
- aiormq (C concurrent publishers; what aio-pika wraps; the API's client until 2026-11-29),
- hurtig.publisher (C concurrent publishers; the API's publisher: frames built by hand).

Prints JSON with msgs/s, the client's CPU per message (this process's CPU time over the
timed run) and the ratio of each to the pika baseline, and writes it to
bench/amqp_clients.json.  Usage: python bench/amqp_clients.py [N] [C]
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import aio_pika
import aiormq
import pika
from conftest import Broker, _free_port

from hurtig.publisher import Brokers, Publisher

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "bench.clients"


def start_broker() -> Broker:
    image = subprocess.run(
        [str(ROOT / "images/build.sh"), "tag", "rabbitmq-trixie"], check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run([str(ROOT / "images/build.sh"), "build", "rabbitmq-trixie"], check=True)
    port = _free_port()
    name = "hurtig-bench-rabbitmq"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--hostname", "localhost", "-p", f"127.0.0.1:{port}:5672", image],
        check=True,
        capture_output=True,
    )
    b = Broker("127.0.0.1", port, name, vhost="%2F")
    deadline = time.monotonic() + 120
    while True:
        try:
            b.rabbitmqctl("add_user", "admin", "admin-pw")
            b.rabbitmqctl("set_permissions", "-p", "/", "admin", ".*", ".*", ".*")
            break
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    b.wait()
    conn = b.connect()
    conn.channel().queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    conn.close()
    return b


def purge(b: Broker) -> None:
    conn = b.connect()
    conn.channel().queue_purge(QUEUE)
    conn.close()


def bench_pika(b: Broker, n: int) -> float:
    conn = b.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    t0 = time.perf_counter()
    for _ in range(n):
        ch.basic_publish("", QUEUE, b'{"payload": {}}', props, mandatory=True)
    dt = time.perf_counter() - t0
    conn.close()
    return n / dt


async def bench_aio_pika(b: Broker, n: int, c: int) -> float:
    conn = await aio_pika.connect_robust(b.url())
    ch = await conn.channel(publisher_confirms=True)

    async def one(k: int) -> None:
        for i in range(k):
            # a message per publish with a message_id, as the API would build it
            msg = aio_pika.Message(
                b'{"payload": {}}', delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=str(i)
            )
            await ch.default_exchange.publish(msg, routing_key=QUEUE, mandatory=True)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(n // c) for _ in range(c)))
    dt = time.perf_counter() - t0
    await conn.close()
    return (n // c) * c / dt


async def bench_aiormq(b: Broker, n: int, c: int) -> float:
    conn = await aiormq.connect(b.url())
    ch = await conn.channel(publisher_confirms=True)

    async def one(k: int) -> None:
        for i in range(k):
            # a message_id per message, as the API sets (returns are matched by it)
            props = aiormq.spec.Basic.Properties(delivery_mode=2, message_id=str(i))
            await ch.basic_publish(b'{"payload": {}}', routing_key=QUEUE, properties=props, mandatory=True)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(n // c) for _ in range(c)))
    dt = time.perf_counter() - t0
    await conn.close()
    return (n // c) * c / dt


async def bench_hurtig(b: Broker, n: int, c: int) -> float:
    publisher = Publisher(Brokers([b.url()], "", 30.0))
    await publisher.start()

    async def one(k: int) -> None:
        for i in range(k):
            await publisher.publish(QUEUE, str(i), b'{"payload": {}}')

    t0 = time.perf_counter()
    await asyncio.gather(*(one(n // c) for _ in range(c)))
    dt = time.perf_counter() - t0
    await publisher.stop()
    return (n // c) * c / dt


def timed(run: Callable[[], float], n: int) -> tuple[float, float]:
    """msgs/s, and this process's CPU µs per message over the run."""
    cpu = time.process_time()
    rps = run()
    return rps, (time.process_time() - cpu) / n * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    b = start_broker()
    try:
        results: dict[str, float] = {}
        for name, run in (
            ("pika_blocking", lambda: bench_pika(b, n)),
            ("aio_pika", lambda: asyncio.run(bench_aio_pika(b, n, c))),
            ("aiormq", lambda: asyncio.run(bench_aiormq(b, n, c))),
            ("hurtig_publisher", lambda: asyncio.run(bench_hurtig(b, n, c))),
        ):
            purge(b)
            run()  # warm-up run, not counted
            purge(b)
            rps, cpu_us = timed(run, n)
            results[f"{name}_rps"] = round(rps, 1)
            results[f"{name}_cpu_us_per_message"] = round(cpu_us, 1)
        base = results["pika_blocking_rps"]
        out: dict[str, float] = {"messages": n, "concurrency": c, **results}
        for name in ("aio_pika", "aiormq", "hurtig_publisher"):
            out[f"{name}_ratio"] = round(results[f"{name}_rps"] / base, 2)
        print(json.dumps(out, indent=2))
        (ROOT / "bench" / "amqp_clients.json").write_text(json.dumps(out, indent=2) + "\n")
    finally:
        subprocess.run(["docker", "rm", "-f", b.container or ""], capture_output=True, check=False)


if __name__ == "__main__":
    main()
