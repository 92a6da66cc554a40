"""HTTP load through staging's ingress: jobs POSTed with an example client's key, open or
closed loop, every 202'd job id kept with the time it left (part of bench/stack.py)."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from stack_inventory import INGRESS, auth


@dataclass
class Load:
    """What a load run saw: every 202'd job id with the time its POST left the client."""

    accepted: dict[str, float] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def ssl_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test ingress has a self-signed certificate
    return ctx


Headers = Callable[[int], dict[str, str]]


async def _post_jobs(  # noqa: PLR0913
    n: int,
    rate: float,
    concurrency: int,
    function: str,
    payload: dict,
    *,
    headers: Headers | None = None,
    ingress: str = INGRESS,
) -> Load:
    """n POSTs with the example client's key, or headers(i) over it for the i-th request."""
    load = Load()
    url = f"{ingress}/v1/functions/{function}/jobs"
    interval = 1.0 / rate if rate > 0 else 0.0
    start = time.monotonic()
    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=ssl_context())
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=auth()) as session:

        async def one(i: int) -> None:
            async with sem:
                sent = time.time()
                try:
                    extra = headers(i) if headers else None
                    async with session.post(url, json={**payload, "i": i}, headers=extra) as resp:
                        body = await resp.read()
                        load.statuses[str(resp.status)] += 1
                        if resp.status == 202:
                            load.accepted[json.loads(body)["job_id"]] = sent
                except (aiohttp.ClientError, TimeoutError) as exc:
                    load.statuses[type(exc).__name__] += 1

        tasks = []
        for i in range(n):
            if interval:  # open loop: send on schedule, whatever the answers do
                delay = start + i * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    load.seconds = time.monotonic() - start
    return load


def post_jobs(  # noqa: PLR0913
    n: int,
    rate: float = 0,
    concurrency: int = 32,
    function: str = "record",
    payload: dict | None = None,
    *,
    headers: Headers | None = None,
) -> Load:
    """POST n jobs through the ingress (rate 0: as fast as `concurrency` clients go)."""
    return asyncio.run(_post_jobs(n, rate, concurrency, function, payload or {}, headers=headers))


async def post_jobs_async(
    n: int, concurrency: int = 32, function: str = "record", *, headers: Headers | None = None
) -> Load:
    """post_jobs inside a running event loop (beside other load)."""
    return await _post_jobs(n, 0, concurrency, function, {}, headers=headers)


def to_json(load: Load) -> str:
    return json.dumps({"accepted": load.accepted, "statuses": load.statuses, "seconds": load.seconds})


def from_json(text: str) -> Load:
    d = json.loads(text)
    return Load(accepted=d["accepted"], statuses=Counter(d["statuses"]), seconds=d["seconds"])


def main(argv: list[str]) -> int:
    """python bench/stack_load.py INGRESS_URL N RATE CONCURRENCY FUNCTION PAYLOAD_JSON: one
    load run, its Load as JSON on stdout (stack.post_jobs_in_ingress runs it with nsenter in
    the ingress node's network namespace)."""
    ingress, n, rate, concurrency, function, payload = argv[1:]
    args = (int(n), float(rate), int(concurrency), function, json.loads(payload))
    load = asyncio.run(_post_jobs(*args, ingress=ingress))
    print(to_json(load))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
