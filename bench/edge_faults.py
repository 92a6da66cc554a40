"""The ingress's edge under abuse (phases of bench/chaos.py): malformed and slow requests
(`bad_input`), a key added and revoked (`revoked_key`), and a flood of wrong keys beside a
valid client (`wrong_key_flood`)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import ssl
import time
import uuid
from collections import Counter

import aiohttp
import cpu
import stack
from faults import FUNCTION, QUEUE, wait_healthy, workers_running

from hurtig import auth


async def raw_request(head: bytes, body_chunks: list[bytes], pause: float = 0.0, read_timeout: float = 90) -> str:
    """Send bytes over TLS, optionally slowly; return the response's status code or what happened."""
    ctx = stack.ssl_context()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.INGRESS_PORT, ssl=ctx)
    except (OSError, ssl.SSLError) as exc:
        return type(exc).__name__
    try:
        writer.write(head)
        for chunk in body_chunks:
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
            writer.write(chunk)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), read_timeout)
        return line.split()[1].decode() if line.startswith(b"HTTP/") else "closed"
    except (ConnectionError, ssl.SSLError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        writer.close()


async def bad_input(repeat: int) -> dict[str, Counter[str]]:
    url = f"{stack.INGRESS}/v1/functions/{FUNCTION}/jobs"
    rng = random.Random(42)
    json_ = {"Content-Type": "application/json"} | stack.auth()  # a valid key: the body is what is wrong
    keyless = {"Content-Type": "application/json"}
    cases: dict[str, list[tuple[str, dict[str, str], bytes]]] = {
        "garbage_body": [("POST", json_, rng.randbytes(200)) for _ in range(repeat)],
        "wrong_content_type": [
            ("POST", {"Content-Type": ct} | stack.auth(), b'{"a": 1}')
            for ct in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/xml")
            for _ in range(max(1, repeat // 4))
        ],
        "huge_body_2mb": [("POST", json_, b'{"a":"' + b"x" * 2_000_000 + b'"}')] * 3,
        "invalid_utf8": [("POST", json_, b'{"a": "\xff\xfe\xc3("}')] * repeat,
        "deep_nesting": [("POST", json_, b"[" * 5000 + b"]" * 5000)] * repeat,
        "empty_body": [("POST", json_, b"")] * repeat,
        "wrong_method": [("GET", stack.auth(), b"")] * repeat,
        "no_key": [("POST", keyless, b"{}")] * repeat,
        "wrong_key": [
            ("POST", keyless | {"Authorization": f"Bearer wrong-{i:06d}-0123456789abc"}, b"{}") for i in range(repeat)
        ],
        "malformed_authorization": [("POST", keyless | {"Authorization": "Basic Zm9vOmJhcg=="}, b"{}")] * repeat,
    }
    results: dict[str, Counter[str]] = {}
    connector = aiohttp.TCPConnector(limit=16, ssl=stack.ssl_context())
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(method: str, headers: dict[str, str], body: bytes, target: str = url) -> str:
            try:
                async with session.request(method, target, headers=headers, data=body) as resp:
                    await resp.read()
                    return str(resp.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return type(exc).__name__

        for name, reqs in cases.items():
            results[name] = Counter(await asyncio.gather(*(one(*r) for r in reqs)))
        names = ["nope", "x" * 300, "..%2f", "r%00"]  # unknown, too long, traversal, NUL
        unknown = [f"{stack.INGRESS}/v1/functions/{names[i % len(names)]}/jobs" for i in range(repeat)]
        results["unknown_function"] = Counter(await asyncio.gather(*(one("POST", json_, b"{}", u) for u in unknown)))
        # a valid key for another function: the record-only client calls sleep
        other = f"{stack.INGRESS}/v1/functions/sleep/jobs"
        scoped = {"Content-Type": "application/json"} | stack.auth("example-record")
        results["key_for_another_function"] = Counter(
            await asyncio.gather(*(one("POST", scoped, b"{}", other) for _ in range(repeat)))
        )
    body = b'{"slow": true}'
    head = (
        b"POST /v1/functions/record/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + f"Authorization: {stack.auth()['Authorization']}\r\n".encode()
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
    )
    # slow clients: a body dribbled out a byte every 2 s, and a body that never comes
    # (nginx drops them after client_body_timeout: "closed", its 408 is only logged)
    slow = [raw_request(head, [bytes([b]) for b in body[:4]], pause=2) for _ in range(3)]
    stalled = [raw_request(head, [], read_timeout=120) for _ in range(3)]
    results["slow_body"] = Counter(await asyncio.gather(*slow))
    results["stalled_body"] = Counter(await asyncio.gather(*stalled))
    return results


def run_bad_input(repeat: int) -> dict:
    wait_healthy()
    stack.reset_processed()
    depth_before = stack.queue_state(QUEUE)[0]
    t0 = time.monotonic()
    statuses = asyncio.run(bad_input(repeat))
    seconds = time.monotonic() - t0
    time.sleep(2)
    processed = stack.processed().lines
    depth = stack.queue_state(QUEUE)[0] - depth_before
    wait_healthy()
    server_errors = sum(v for c in statuses.values() for k, v in c.items() if k.startswith("5"))
    accepted = sum(v for c in statuses.values() for k, v in c.items() if k.startswith("2"))
    result = {
        "requests": sum(sum(c.values()) for c in statuses.values()),
        "statuses": {k: dict(sorted(v.items())) for k, v in statuses.items()},
        "5xx": server_errors,
        "accepted": accepted,
        "processed": processed,
        "queue_depth_change": depth,
        "workers_running": workers_running(),
        "seconds": round(seconds, 1),
    }
    print(f"[chaos] bad_input: {json.dumps(result)}", flush=True)
    return result


def _wrong_key(i: int) -> dict[str, str]:
    return {"Authorization": f"Bearer flood-{i:08d}-{uuid.uuid4().hex}"}


def _flood(n: int, out: multiprocessing.Queue) -> None:
    """The attacker, in a process of its own (its event loop is not the valid client's)."""
    load = stack.post_jobs(n, concurrency=64, headers=_wrong_key)
    out.put((dict(load.statuses), load.seconds))


def run_wrong_key_flood(flood: int, valid: int) -> dict:
    """`flood` distinct wrong keys at full rate from one process; the valid client's jobs/s
    during it from another, beside a run of the same client without it (same path, same
    script); the CPU seconds each part of the stack and each client spent meanwhile."""
    wait_healthy()
    alone = stack.post_jobs(valid, concurrency=8)
    ctx = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = ctx.Queue()
    before = cpu.snapshot(stack.hosts())
    attacker = ctx.Process(target=_flood, args=(flood, results))
    attacker.start()
    time.sleep(0.5)  # the flood is running
    valid_before = time.process_time()
    during = stack.post_jobs(valid, concurrency=8)
    valid_cpu = time.process_time() - valid_before
    statuses, seconds = results.get(timeout=600)
    attacker.join()
    spent = cpu.spent(before, cpu.snapshot(stack.hosts()))
    spent["valid client"] = round(valid_cpu, 2)
    spent["flood client"] = spent.pop("child processes")
    spent.pop("this process")
    wait_healthy()
    result = {
        "wrong_keys": flood,
        "wrong_key_rps": round(flood / seconds),
        "wrong_key_statuses": dict(sorted(statuses.items())),
        "valid_jobs": valid,
        "valid_rps_alone": round(valid / alone.seconds),
        "valid_rps_during_flood": round(valid / during.seconds),
        "valid_non_202": {k: v for k, v in (alone.statuses + during.statuses).items() if k != "202"},
    }
    result["valid_ratio"] = round(result["valid_rps_during_flood"] / max(result["valid_rps_alone"], 1), 2)
    result["cpu_s"] = dict(sorted(spent.items(), key=lambda kv: -kv[1]))  # `wall`: the window
    print(f"[chaos] wrong_key_flood: {json.dumps(result)}", flush=True)
    return result


def run_revoked_key(n: int) -> dict:
    """A client's key added and then revoked as docs/operating.md says (the vault's list,
    and playbooks/api-keys.yml): 202 while it is listed; 401 within a second or two of the run
    that removes it returning, with no restart; the other clients keep their 202s."""
    wait_healthy()
    key = f"chaos-revoked-{uuid.uuid4().hex}"
    client = {"name": "chaos-revoked", "sha256": auth.digest(key), "functions": [FUNCTION]}
    listed = "{{ vault_hurtig_api_keys + [" + json.dumps(client) + "] }}"

    def bearer(_: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def status() -> str:
        return next(iter(stack.post_jobs(1, headers=bearer).statuses))

    stack.playbook("api-keys.yml", "-e", json.dumps({"hurtig_api_keys": listed}))
    valid_after_s = stack.wait_for(lambda: status() == "202", 10, "the added key accepted", 0.1)
    before = stack.post_jobs(n, concurrency=8, headers=bearer)
    revoke_s = stack.playbook("api-keys.yml")
    revoked_after_s = stack.wait_for(lambda: status() == "401", 10, "the revoked key refused", 0.1)
    after = stack.post_jobs(n, concurrency=8, headers=bearer)
    others = stack.post_jobs(n, concurrency=8)
    result = {
        "added_key_accepted_after_s": round(valid_after_s, 2),
        "while_listed": dict(before.statuses),
        "revoke_playbook_s": round(revoke_s, 1),
        "revoked_key_refused_after_s": round(revoked_after_s, 2),
        "after_revocation": dict(after.statuses),
        "other_clients": dict(others.statuses),
    }
    print(f"[chaos] revoked_key: {json.dumps(result)}", flush=True)
    return result
