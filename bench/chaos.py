"""Fault tests: no job that got a 202 is ever lost. `make chaos` -> bench/faults.json

For each fault, N no-op `record` jobs are posted through the ingress (open loop, RATE per
second) and the fault is injected once LOAD_AT of the load has been sent. The client keeps
every 202'd job id; the record handler on the worker node appends every job it starts to
processed.log. When the load is over, the script waits until every accepted id has been
processed (or RECOVERY_S passes) and reports, per fault:

    accepted, processed_unique, lost (accepted, never processed), duplicates (extra
    deliveries), non_202 (count per status), recovery_s (end of load -> last job done),
    workers_running (after recovery, all replicas), in_flight_bound (replicas x prefetch)

then throws malformed requests at the ingress (`bad_input`: counts per status, no 5xx,
nothing accepted; no key, wrong keys, a key for another function included), adds a key and
revokes it with playbooks/api-keys.yml (`revoked_key`: 202 while listed, 401 after, seconds
to take effect), breaks the autoscaler of staging's `burst` mid-burst (`autoscale_faults`,
bench/autoscale_faults.py: its process killed, the brokers unreachable, Docker restarted;
nothing lost, the containers kept), and floods it with --wrong-keys distinct wrong API keys
at full rate while a valid client posts
(`wrong_key_flood`: every wrong key 401, and the valid client's jobs/s beside the same
client without the flood). Exits 1 on any lost job, an unbounded duplicate count, a 5xx on
bad input, a wrong key not answered 401, a valid job not accepted during the flood, or a
worker that did not come back.

    python bench/chaos.py [--n N] [--rate R] [--only name,name] [--wrong-keys K] [--out bench/faults.json]

The stack is staging's, with its three brokers: the broker faults hit the node leading the
job queue (kill -9, restart, a 30 s partition from the other brokers) or rebuild broker 1
from an empty volume. The stack must be up (python bench/stack.py up; `make chaos` does it
and tears it down).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import random
import ssl
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import autoscale_faults
import cpu
import stack

from hurtig import auth

_RECORD = stack.function("record")  # as inventories/staging defines it
FUNCTION, QUEUE, REPLICAS, PREFETCH = "record", _RECORD["queue"], _RECORD["replicas"], _RECORD["prefetch"]
RECOVERY_S = 240


def leader() -> str:
    """The broker whose node leads the job queue (its quorum's leader), asked of any running one."""
    for broker in stack.BROKERS:
        out = stack.node(broker, "rabbitmqctl", "-q", "list_queues", "-p", stack.contract()["hurtig_vhost"],
                         "name", "leader", "--formatter", "json", check=False)  # fmt: skip
        try:
            queues = {q["name"]: q["leader"] for q in json.loads(out)}
        except ValueError:
            continue
        return queues[QUEUE].split("@", 1)[1]
    raise RuntimeError("no broker answers")


def kill_broker() -> None:
    # the Erlang VM of the job queue's leader, no shutdown of any kind; systemd restarts it
    # (Restart=on-failure); the other two elect a leader and keep the queue
    stack.node(leader(), "pkill", "-KILL", "-x", "beam.smp")


def restart_broker() -> None:
    stack.node(leader(), "systemctl", "restart", "rabbitmq-server")


def partition_broker(seconds: float = 30) -> None:
    # the job queue's leader cut off from the other brokers (clients still reach it): it is
    # in the minority, so pause_minority stops it and its clients move to the majority,
    # which elects a new leader; the rules go, and it rejoins
    isolated = leader()
    peers = ", ".join(stack.address(b) for b in stack.BROKERS if b != isolated)
    rules = f"""table inet hurtig_chaos {{
    chain cut_output {{ type filter hook output priority -10; ip daddr {{ {peers} }} drop; }}
    chain cut_input {{ type filter hook input priority -10; ip saddr {{ {peers} }} drop; }}
}}
"""
    stack.node(isolated, "nft", "-f", "-", stdin=rules)
    time.sleep(seconds)
    stack.node(isolated, "nft", "delete", "table", "inet", "hurtig_chaos")


def rebuild_broker() -> None:
    # broker 1's data volume lost: stopped, emptied (its cookie included), and the brokers
    # converged again (playbooks/broker.yml; docs/operating.md, "Rebuilding a broker"); it joins the
    # running two, which the run leaves untouched
    broker = stack.BROKERS[0]
    stack.node(broker, "systemctl", "stop", "rabbitmq-server")
    stack.node(broker, "find", "/var/lib/rabbitmq", "-mindepth", "1", "-delete")
    stack.playbook("broker.yml")


def kill_worker_container() -> None:
    # SIGKILL the worker process from the node, like the OOM killer would: the restart
    # policy brings the container back, its unacked jobs go to the other replica.
    pid = stack.node(stack.WORKER, "docker", "inspect", "-f", "{{.State.Pid}}", "hurtig-record-1").strip()
    stack.node(stack.WORKER, "kill", "-9", pid)


def restart_docker() -> None:
    stack.node(stack.WORKER, "systemctl", "restart", "docker")  # live-restore keeps the workers running


def restart_api() -> None:
    stack.node(stack.API_NODES[0], "docker", "restart", "hurtig-api")


def cut_network(seconds: float = 20, during: Callable[[], None] | None = None) -> None:
    """The worker node cut from every broker for `seconds` (calling `during` meanwhile)."""
    brokers = "{ " + ", ".join(stack.address(b) for b in stack.BROKERS) + " }"
    rules = f"""table inet hurtig_chaos {{
    chain cut_forward {{ type filter hook forward priority -10; ip daddr {brokers} drop; ip saddr {brokers} drop; }}
    chain cut_output {{ type filter hook output priority -10; ip daddr {brokers} drop; }}
    chain cut_input {{ type filter hook input priority -10; ip saddr {brokers} drop; }}
}}
"""
    stack.node(stack.WORKER, "nft", "-f", "-", stdin=rules)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if during:
            during()
        time.sleep(min(0.5, max(0.0, end - time.monotonic())))
    stack.node(stack.WORKER, "nft", "delete", "table", "inet", "hurtig_chaos")


def redeploy_workers() -> None:
    # a new release: every worker container is replaced, one at a time, with a SIGTERM stop
    stack.playbook("redeploy-workers.yml", "-e", json.dumps({"worker_extra_env": {"HURTIG_RELEASE": str(time.time())}}))


def rotate_passwords() -> None:
    # new passwords for the API and worker users (characters that break an unencoded URL),
    # rolled out by site.yml's layers that hold them (docs/operating.md, Operating the brokers);
    # every client connection is then closed, so that the API and the workers must log in
    # again with the file the run wrote, without a restart. Then the vault's values again
    # the same way, so that the stack ends as the inventory says.
    token = uuid.uuid4().hex[:12]
    rotated = {"vault_rabbitmq_api_password": f"api@:/%#{token}", "vault_rabbitmq_worker_password": f"wk?&=/{token}"}
    for extra in (["-e", json.dumps(rotated)], []):
        stack.playbook("../site.yml", "--tags", "rabbitmq-users,api,workers", *extra)
        for broker in stack.BROKERS:  # each node closes its own clients' connections
            stack.node(broker, "rabbitmqctl", "close_all_connections", "password rotated")


# Faults that leave an API node and the broker reachable: every request must get a 202 (a
# 503 is right only while no broker is reachable; an API restart is absorbed by nginx).
ONLY_202 = {"worker_container_kill9", "docker_daemon_restart", "api_container_restart", "rolling_redeploy_workers"}

FAULTS: dict[str, Callable[[], None]] = {
    "broker_kill9": kill_broker,
    "broker_systemctl_restart": restart_broker,
    "worker_container_kill9": kill_worker_container,
    "docker_daemon_restart": restart_docker,
    "api_container_restart": restart_api,
    "network_cut_worker_broker_20s": cut_network,
    "rolling_redeploy_workers": redeploy_workers,
    "rotate_passwords": rotate_passwords,
    "broker_partition_30s": partition_broker,
    "broker_rebuild_from_empty_volume": rebuild_broker,
}


def workers_running() -> int:
    out = stack.node(stack.WORKER, "docker", "ps", "-q", "--filter", f"label=org.hurtig.function={FUNCTION}")
    return len(out.split())


def wait_healthy(timeout: float = 180) -> None:
    """The stack is whole again: all consumers attached and a probe job gets a 202."""
    stack.wait_for(lambda: stack.queue_state(QUEUE)[1] == REPLICAS, timeout, f"{REPLICAS} consumers on {QUEUE}")
    stack.wait_for(lambda: workers_running() == REPLICAS, timeout, "worker containers running")
    probes: list[str] = []

    def probe() -> bool:
        load = stack.post_jobs(4, concurrency=4)
        probes[:] = list(load.accepted)
        return load.statuses == {"202": 4}

    stack.wait_for(probe, timeout, "probe jobs accepted")
    # and processed, so that they do not count in the next fault's figures
    stack.wait_for(lambda: set(probes) <= set(stack.processed().started), timeout, "probe jobs processed")


def run_fault(name: str, fault: Callable[[], None], n: int, rate: float, load_at: float) -> dict:
    wait_healthy()
    stack.reset_processed()
    errors: list[str] = []

    def inject() -> None:
        time.sleep(n / rate * load_at)
        try:
            fault()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    injector = threading.Thread(target=inject)
    injector.start()
    load = stack.post_jobs(n, rate=rate, concurrency=64)
    load_done = time.monotonic()
    injector.join()

    def all_processed() -> bool:
        done = stack.processed().started
        return all(job_id in done for job_id in load.accepted)

    try:
        stack.wait_for(all_processed, RECOVERY_S, "every accepted job processed", interval=1)
    except TimeoutError as exc:
        errors.append(str(exc))
    recovery = time.monotonic() - load_done
    time.sleep(1)  # late redeliveries still count as duplicates
    seen = stack.processed()
    try:
        wait_healthy()
    except TimeoutError as exc:
        errors.append(str(exc))
    unique = sum(1 for job_id in load.accepted if job_id in seen.started)
    result = {
        "sent": n,
        "accepted": len(load.accepted),
        "processed_unique": unique,
        "lost": len(load.accepted) - unique,
        "duplicates": seen.duplicates,
        "processed_without_202": len(set(seen.started) - set(load.accepted)),
        "non_202": dict(sorted((k, v) for k, v in load.statuses.items() if k != "202")),
        "load_s": round(load.seconds, 1),
        "recovery_s": round(recovery, 1),
        "workers_running": workers_running(),
        "in_flight_bound": REPLICAS * PREFETCH,
        "errors": errors,
    }
    print(f"[chaos] {name}: {json.dumps(result)}", flush=True)
    return result


# --- bad input -------------------------------------------------------------------------


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


def summary(report: dict) -> int:
    for name, r in report["faults"].items():
        print(
            f"[chaos] {name}: accepted {r['accepted']}, lost {r['lost']}, duplicates {r['duplicates']}, "
            f"non-202 {r['non_202'] or 0}, recovery {r['recovery_s']} s"
        )
    if "bad_input" in report:
        b = report["bad_input"]
        print(f"[chaos] bad_input: {b['requests']} requests, 5xx {b['5xx']}, accepted {b['accepted']}")
    for name, r in report.get("autoscale_faults", {}).items():
        print(f"[chaos] autoscale {name}: accepted {r.get('accepted')}, lost {r['lost']}, ok {r['ok']}")
    if "wrong_key_flood" in report:
        f = report["wrong_key_flood"]
        print(
            f"[chaos] wrong_key_flood: {f['wrong_keys']} wrong keys at {f['wrong_key_rps']}/s "
            f"{f['wrong_key_statuses']}; valid client {f['valid_rps_during_flood']} jobs/s during it, "
            f"{f['valid_rps_alone']} alone (x{f['valid_ratio']})"
        )
    print(f"[chaos] n={report['n']} in {report['seconds']} s, failures: {report['failures'] or 'none'}")
    return 0


def run_phases(only: list[str], args: argparse.Namespace, report: dict) -> list[str]:
    """The phases after the faults (bad input, a revoked key, the wrong-key flood); the failed ones."""
    failures = []
    if not only or "bad_input" in only:
        r = report["bad_input"] = run_bad_input(max(4, args.n // 100))
        if r["5xx"] or r["accepted"] or r["processed"] or r["workers_running"] != REPLICAS:
            failures.append("bad_input")
    if not only or "revoked_key" in only:
        r = report["revoked_key"] = run_revoked_key(max(20, args.n // 100))
        expected = {"while_listed": {"202"}, "after_revocation": {"401"}, "other_clients": {"202"}}
        if any(set(r[k]) != v for k, v in expected.items()):
            failures.append("revoked_key")
    if not only or "autoscale_faults" in only:
        r = report["autoscale_faults"] = autoscale_faults.run(cut_network)
        failures += [f"autoscale_faults {k}" for k, v in r.items() if v["lost"] != 0 or not v["ok"]]
    if not only or "wrong_key_flood" in only:
        r = report["wrong_key_flood"] = run_wrong_key_flood(args.wrong_keys, max(200, args.n // 2))
        if set(r["wrong_key_statuses"]) != {"401"} or r["valid_non_202"]:
            failures.append("wrong_key_flood")
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="jobs per fault (default 1000; the full run: 10000)")
    ap.add_argument("--rate", type=float, default=250, help="jobs per second (open loop)")
    ap.add_argument("--load-at", type=float, default=0.3, help="inject the fault after this share of the load")
    ap.add_argument("--only", default="", help="faults and phases to run, comma-separated")
    ap.add_argument("--wrong-keys", type=int, default=10000, help="distinct wrong API keys of the flood")
    ap.add_argument("--out", default=str(stack.ROOT / "bench" / "faults.json"))
    ap.add_argument("--summary", metavar="JSON", help="print a line per fault of an earlier run and exit")
    args = ap.parse_args()
    if args.summary:
        return summary(json.loads(Path(args.summary).read_text()))
    only = [s for s in args.only.split(",") if s]
    phases = ["bad_input", "revoked_key", "autoscale_faults", "wrong_key_flood"]
    unknown = set(only) - set(FAULTS) - set(phases)
    if unknown:
        known = ", ".join([*FAULTS, *phases])
        ap.error(f"unknown fault(s): {', '.join(sorted(unknown))}; known: {known}")

    t0 = time.monotonic()
    report: dict = {
        "n": args.n,
        "rate": args.rate,
        "machine": f"{platform.node()} {platform.machine()}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "faults": {},
    }
    failures = []
    for name, fault in FAULTS.items():
        if only and name not in only:
            continue
        r = run_fault(name, fault, args.n, args.rate, args.load_at)
        report["faults"][name] = r
        if r["lost"] or r["errors"] or r["workers_running"] != REPLICAS:
            failures.append(name)
        elif name in ONLY_202 and r["non_202"]:
            failures.append(f"{name} (non-202 {r['non_202']})")
        elif r["duplicates"] > r["in_flight_bound"] * 2:  # two deliveries in flight can be cut per fault
            failures.append(f"{name} (duplicates {r['duplicates']})")
    failures += run_phases(only, args, report)
    report["seconds"] = round(time.monotonic() - t0)
    report["failures"] = failures
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    lost = sum(r["lost"] for r in report["faults"].values())
    print(f"[chaos] {len(report['faults'])} faults, {lost} lost, failures: {failures or 'none'} -> {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
