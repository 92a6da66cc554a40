"""The broker's baseline: what publishing a job costs the brokers without the API.

A raw publisher, run inside an API node's network namespace (the brokers' firewall admits
AMQP from the API nodes), connects as the API's broker user over the same TLS and publishes
the same messages the API publishes for a job (the job body hurtig.jobs encodes for wrk's
payload, persistent, mandatory, the same properties) to the same quorum queue, with
confirms, on as many connections as the API processes hold, with at most `in_flight`
messages awaiting their confirm (wrk's connections), at `rate` messages per second (what
the API's jobs reached in the same run). run.py takes the brokers' CPU per
message over the run from their cgroups and compares it with what the API's jobs cost them.

    python bench/rawpub.py   (run by run.py through nsenter; settings as JSON on stdin)
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiormq
from pamqp import commands as spec

from hurtig import amqp, jobs


async def publisher(url: str, context: ssl.SSLContext, s: dict[str, Any], t0: float, count: list[int]) -> None:
    connection = await aiormq.connect(url, context=context)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)

    async def one_at_a_time() -> None:
        while True:  # the n-th message of all the publishers leaves at t0 + n / rate
            due = t0 + count[1] / s["rate"]
            if due > t0 + s["seconds"]:
                return
            count[1] += 1
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            job_id = str(uuid.uuid4())
            body = jobs.Job(job_id, s["function"], s["payload"], datetime.now(UTC).isoformat()).to_body()
            props = spec.Basic.Properties(
                delivery_mode=2, content_type="application/json", message_id=job_id, timestamp=datetime.now(UTC)
            )
            confirm = await channel.basic_publish(
                body, exchange=s["exchange"], routing_key=s["function"], properties=props, mandatory=True
            )
            assert isinstance(confirm, spec.Basic.Ack), confirm
            count[0] += 1

    await asyncio.gather(*(one_at_a_time() for _ in range(s["in_flight"] // s["connections"])))
    await connection.close()


async def run(s: dict[str, Any]) -> dict[str, float]:
    context = amqp.ssl_context(amqp.Tls(**s["tls"]))
    urls = [amqp.resolve(u, s["password_file"]) for u in s["urls"]]
    count = [0, 0]  # confirmed, scheduled
    t0 = time.monotonic() + 1  # every connection open by then
    await asyncio.gather(*(publisher(urls[i % len(urls)], context, s, t0, count) for i in range(s["connections"])))
    return {"messages": count[0], "seconds": round(time.monotonic() - t0, 2)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.load(sys.stdin)))))
