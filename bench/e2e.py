"""The end-to-end cases of `make bench` (part of bench/run.py): POST leaving the client ->
the record handler starting, at rates the record workers carry, and the first job after idle.

"Half load" is half of what the two record workers process under this case's own load: an
open-loop Python client at a fixed rate, whose jobs arrive one by one. wrk's 64 closed-loop
clients (`record_processed_rps`) let every process batch: the brokers commit many messages
per Raft round, the workers take several per read. At a paced rate each job is a round of
its own and costs the stack more, so half of the saturated rate can be more than the
workers carry here (then the case measures a growing queue, not the hand-off). A probe at
that rate measures what they do process (`e2e_capacity_rps`); the sweep runs at 50 jobs/s
and at 10, 25 and 50 % of it, the 50 % point `runs` times (median, range).
"""

from __future__ import annotations

import os
import time

import cpu
import stack
from http_cases import drained
from loadgen import cpu_by_group, cpu_us_per
from medians import median_into

SECONDS = 10


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def processed_rps(sent: list[float], started: list[float]) -> float:
    """Jobs whose handler started while the load ran (first to last POST sent), per second:
    the offered rate while the workers keep up, what they manage when they do not."""
    first, last = min(sent), max(sent)
    if last <= first:
        return 0.0
    return round(sum(1 for t in started if t <= last) / (last - first), 1)


def e2e(rate: float, seconds: float = SECONDS) -> dict:
    """POST leaving the client -> the record handler starting, open loop at `rate`/s. The
    client (Python, aiohttp) runs in the ingress node's network namespace against its
    loopback, as wrk does; the CPU each group spent per job covers the load and its
    processing (from the first POST until the last job started)."""
    stack.wait_for(lambda: drained("jobs.record"), 300, "jobs.record drained")
    stack.reset_processed()
    before = cpu.snapshot(stack.hosts())
    load = stack.post_jobs_in_ingress(int(rate * seconds), rate=rate, concurrency=64)
    stack.wait_for(lambda: set(load.accepted) <= set(stack.processed().started), 300, "e2e jobs processed", 0.2)
    used = cpu_by_group(cpu.spent(before, cpu.snapshot(stack.hosts())))
    started = stack.processed().started
    lat = [(started[j] - sent) * 1000 for j, sent in load.accepted.items()]
    return {
        "rate": round(rate),
        "jobs": len(lat),
        "non_202": sum(v for k, v in load.statuses.items() if k != "202"),
        "processed_rps": processed_rps(list(load.accepted.values()), [started[j] for j in load.accepted]),
        "p50_ms": round(percentile(lat, 50), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "cpu_us_per_job": cpu_us_per(used, len(lat)),
        "cpu_busy": round(sum(v for g, v in used.items() if g != "wall") / used["wall"] / (os.cpu_count() or 1), 2),
    }


def first_job_after_idle(idle_s: float) -> float:
    time.sleep(idle_s)
    stack.reset_processed()
    load = stack.post_jobs(1, concurrency=1)
    ((job_id, sent),) = load.accepted.items()
    stack.wait_for(lambda: job_id in stack.processed().started, 60, "the job after idle processed", 0.05)
    return round((stack.processed().started[job_id] - sent) * 1000, 2)


def e2e_figures(r: dict, runs: int, idle_s: float) -> None:
    """The sweep (module docstring), e2e_p50_ms/e2e_p99_ms at half load with their ranges,
    and the first job after `idle_s` idle seconds against the trickle's p99."""
    top = min(r["ingress_jobs_with_workers_rps"], r["record_processed_rps"])
    probe = e2e(top)
    capacity = min(top, probe["processed_rps"])
    r["e2e_capacity_rps"] = capacity
    sweep = [e2e(50)] + [e2e(capacity * share) for share in (0.1, 0.25)]
    half = [e2e(capacity * 0.5) for _ in range(runs)]
    median_into(r, [{"e2e_p50_ms": h["p50_ms"], "e2e_p99_ms": h["p99_ms"]} for h in half], "e2e_p50_ms", "e2e_p99_ms")
    # the half-load run whose p99 is the median's (its CPU and processed rate with it)
    by_p99 = sorted(half, key=lambda h: h["p99_ms"])
    r["e2e_sweep"] = [*sweep, by_p99[len(by_p99) // 2], probe]
    r["idle_s"] = idle_s
    r["first_job_after_idle_ms"] = first_job_after_idle(idle_s)
    # a single job after idling against warm single jobs: the trickle's p99, not a saturated one
    r["warm_p99_ms"] = r["e2e_sweep"][0]["p99_ms"]
    r["idle_vs_warm_p99"] = round(r["first_job_after_idle_ms"] / r["warm_p99_ms"], 2)
