"""Benchmarks of the full stack: `make bench` -> bench/results.json (+ bench/results.svg)

Every figure that depends on the machine is reported next to a baseline measured in the same
run: the ingress nginx answering `return 202` is the ceiling of the HTTP path, the API's
/healthz through the same upstream is the ceiling of the web stack. wrk (Debian's package)
runs in the ingress node's network namespace and drives its loopback (no Docker proxy on the
measured path), with the same settings for every case: WRK_THREADS threads, WRK_CONNECTIONS
keep-alive connections, WRK_SECONDS seconds; and MANY_CLIENTS connections for the case of
thousands of clients. Each case records the CPU time each group of processes spent (cgroups).

    python bench/run.py [--idle-s 60] [--skip-site]

The stack must be up (python bench/stack.py up; `make bench` does it, timing the first
converge, and tears it down). Results: docs/benchmarks.md (python bench/report.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import autoscale
import cpu
import stack
from e2e import e2e_figures
from http_cases import backlog_drain_rps, drained, http_figures, many_figures
from loadgen import WRK_CONNECTIONS, WRK_SECONDS, WRK_THREADS
from medians import combine, median_into

TARGETS = {
    "ingress_ratio": (">=", 0.15),
    "api_publish_ratio": (">=", 0.8),
    "keepalive_ratio": (">=", 1.5),
    # a job against a do-nothing request at the same rate: an event loop's CPU per request falls
    # as its load rises, so /healthz saturated (api_job_vs_healthz_cpu) is no like-for-like baseline
    "api_job_vs_healthz_cpu_at_job_rate": ("<=", 1.5),
    "broker_vs_raw_cpu": ("<=", 1.2),
    "auth_overhead_ratio": (">=", 0.95),
    "many_clients_healthz_ratio": (">=", 0.8),
    "many_clients_jobs_ratio": (">=", 0.8),
    "many_clients_socket_errors": ("<=", 0),
    "e2e_p50_ms": ("<=", 5),
    "e2e_p99_ms": ("<=", 20),
    "idle_vs_warm_p99": ("<=", 2),
    "scale_up_s": ("<=", 10),
    "site_rerun_ratio": ("<=", 0.25),
    "autoscale_first_consumer_s": ("<=", 3),
    "autoscale_to_max_s": ("<=", 5),
    "autoscale_lost": ("<=", 0),
    "autoscale_flaps": ("<=", 0),
}


def drain(replicas: int, jobs: int, ms: int) -> float:
    """Seconds to drain `jobs` sleep jobs of `ms` each with `replicas` consumers (prefetch 1)."""
    stack.playbook("scale.yml", "-e", "function=sleep", "-e", f"replicas={replicas}")
    stack.wait_for(lambda: stack.queue_state("jobs.sleep")[1] == replicas, 60, f"{replicas} sleep consumers")
    t0 = time.monotonic()
    load = stack.post_jobs(jobs, concurrency=64, function="sleep", payload={"ms": ms})
    assert load.statuses == {"202": jobs}, load.statuses
    stack.wait_for(lambda: drained("jobs.sleep"), 600, "jobs.sleep drained", 0.1)
    return time.monotonic() - t0


def scale_up(frm: int, to: int) -> float:
    stack.playbook("scale.yml", "-e", "function=sleep", "-e", f"replicas={frm}")
    stack.wait_for(lambda: stack.queue_state("jobs.sleep")[1] == frm, 60, f"{frm} sleep consumers")
    t0 = time.monotonic()
    stack.playbook("scale.yml", "-e", "function=sleep", "-e", f"replicas={to}")
    stack.wait_for(lambda: stack.queue_state("jobs.sleep")[1] == to, 120, f"{to} sleep consumers", 0.1)
    return round(time.monotonic() - t0, 1)


def scale_figures(r: dict, runs: int) -> None:
    """`runs` scale-ups of 2 -> 6 replicas (each from 2 attached consumers): the median, its range."""
    median_into(r, [{"scale_up_s": scale_up(2, 6)} for _ in range(runs)], "scale_up_s")


def many_only(r: dict, runs: int) -> None:
    """`runs` runs of the thousands-of-clients cases into the existing results (median, range)."""
    measured = []
    for _ in range(runs):
        measured.append({})
        many_figures(measured[-1])
    many = combine(measured)
    r["wrk_runs"].update(many.pop("wrk_runs"))
    r.setdefault("ranges", {}).update(many.pop("ranges", {}))
    r.update({k: v for k, v in many.items() if k.startswith("many_clients")})
    stack.playbook("scale.yml", "-e", "function=record", "-e", "replicas=2")  # as the stack was


def drain_only(r: dict, runs: int) -> None:
    """`runs` backlog drains of the record workers into the existing results (median, range)."""
    median_into(r, [{"record_drain_rps": backlog_drain_rps()} for _ in range(runs)], "record_drain_rps")


def site_figures(r: dict, runs: int, first_s: float) -> None:
    """Time `runs` idempotent re-runs of site.yml on the converged stack, each once the machine
    is at rest (cpu.settle: what it waited, how busy it was): the median, its range, the task
    counts of the first converge and the re-run, the ratio to `first_s`."""
    rerun_log = stack.ROOT / ".cache" / "bench-rerun.log"
    settled, timed = [], []
    for _ in range(runs):  # each on a machine at rest, as the first converge ran
        settled.append(cpu.settle())
        timed.append({"site_rerun_s": round(stack.converge(rerun_log), 1)})
    r["site_settle"] = settled
    median_into(r, timed, "site_rerun_s")
    low_high = r["ranges"]["site_rerun_s"]
    first_log = stack.ROOT / ".cache" / "stack-converge.log"
    r["site_tasks"] = {
        "first": stack.task_counts(first_log) if first_log.exists() else None,
        "rerun": stack.task_counts(rerun_log),
    }
    if first_s:
        r["site_first_s"] = round(first_s, 1)
        r["site_rerun_ratio"] = round(r["site_rerun_s"] / first_s, 3)
        r["ranges"]["site_rerun_ratio"] = [round(v / first_s, 3) for v in low_high]


def targets(r: dict) -> dict:
    return {
        k: {
            "target": f"{op} {v}",
            "value": r.get(k),
            "met": r.get(k) is not None and (r[k] >= v if op == ">=" else r[k] <= v),
        }
        for k, (op, v) in TARGETS.items()
    }


def update_only(out: str, what: str, measure: Callable[[dict], None]) -> int:
    """--site-only, --scale-only: measure those figures into the existing results; the others
    stay those of their run, and `<what>_date` says when these were taken."""
    r = json.loads(Path(out).read_text())
    measure(r)
    r[f"{what}_date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    r["targets"] = targets(r)
    Path(out).write_text(json.dumps(r, indent=2) + "\n")
    ranges = r.get("ranges", {})
    print({k: (v, ranges.get(k)) for k, v in r.items() if k.startswith(what)})
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--idle-s", type=float, default=float(os.environ.get("IDLE_S", "60")))
    ap.add_argument("--site-first-s", type=float, default=0.0, help="the first converge, timed by the caller")
    ap.add_argument("--skip-site", action="store_true", help="do not time an idempotent re-run of site.yml")
    ap.add_argument("--out", default=str(stack.ROOT / "bench" / "results.json"))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "3")), help="runs of the wrk cases")
    ap.add_argument("--http-only", action="store_true", help="only the wrk cases (a before/after comparison)")
    ap.add_argument("--site-only", action="store_true", help="only the re-runs of site.yml, into the existing --out")
    ap.add_argument("--scale-only", action="store_true", help="only the scale-ups of scale.yml, as --site-only")
    ap.add_argument("--many-only", action="store_true", help="only the thousands-of-clients cases, as --site-only")
    ap.add_argument("--e2e-only", action="store_true", help="only the end-to-end cases (bench/e2e.py), as --site-only")
    ap.add_argument("--drain-only", action="store_true", help="only the record workers' backlog drain, as --site-only")
    args = ap.parse_args()
    if args.site_only and not args.site_first_s:  # else the ratio would keep an older first converge
        ap.error("--site-only needs --site-first-s (the first converge of the stack being re-run)")
    if args.site_only:
        return update_only(args.out, "site", lambda r: site_figures(r, args.runs, args.site_first_s))
    if args.scale_only:
        return update_only(args.out, "scale", lambda r: scale_figures(r, args.runs))
    if args.many_only:
        return update_only(args.out, "many_clients", lambda r: many_only(r, args.runs))
    if args.e2e_only:
        return update_only(args.out, "e2e", lambda r: e2e_figures(r, args.runs, args.idle_s))
    if args.drain_only:
        return update_only(args.out, "drain", lambda r: drain_only(r, args.runs))
    # wrk holds a socket per client: the soft open-files limit up to the hard one
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    r: dict = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.release()}",
        "wrk": {"threads": WRK_THREADS, "connections": WRK_CONNECTIONS, "seconds": WRK_SECONDS},
    }
    runs = []
    for i in range(args.runs):
        print(f"[bench] wrk cases, run {i + 1} of {args.runs}", flush=True)
        runs.append({})
        http_figures(runs[-1])
    r.update(combine(runs))
    if args.http_only:
        Path(args.out).write_text(json.dumps(r, indent=2) + "\n")
        return 0
    e2e_figures(r, args.runs, args.idle_s)  # at rates the record workers carry (bench/e2e.py)

    scale_figures(r, args.runs)
    jobs_n, ms = 600, 20
    six = drain(6, jobs_n, ms)
    two = drain(2, jobs_n, ms)
    r["drain"] = {"jobs": jobs_n, "job_ms": ms, "replicas_2_s": round(two, 2), "replicas_6_s": round(six, 2)}
    r["drain_speedup"] = round(two / six, 2)

    r.update(autoscale.measure())

    if not args.skip_site:
        site_figures(r, args.runs, args.site_first_s)
    r["targets"] = targets(r)
    Path(args.out).write_text(json.dumps(r, indent=2) + "\n")
    print(json.dumps({k: v for k, v in r.items() if not isinstance(v, dict)}, indent=2))
    missed = [k for k, t in r["targets"].items() if not t["met"]]
    print(f"[bench] targets met: {len(TARGETS) - len(missed)}/{len(TARGETS)}; missed: {missed or 'none'} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
