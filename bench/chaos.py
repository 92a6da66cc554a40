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
import json
import platform
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import autoscale_faults
import stack
from edge_faults import run_bad_input, run_revoked_key, run_wrong_key_flood
from faults import FAULTS, ONLY_202, PREFETCH, RECOVERY_S, REPLICAS, cut_network, wait_healthy, workers_running


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
