"""The HTTP cases of `make bench` (bench/run.py): the ceiling, the API's health with and
without upstream keepalive and at the jobs' rate, the jobs without and with workers, the
raw publisher's baseline for the brokers, the key check off and on, and thousands of
clients; the load generators are bench/loadgen.py's."""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cpu
import stack
from loadgen import BODY, MANY_CLIENTS, WRK_CONNECTIONS, WRK_SECONDS, cpu_by_group, h2load, wrk


def api_client() -> dict[str, Any]:
    """The first API node's network namespace and its API container's broker settings: the
    URLs, the password file and TLS files (seen from this host through /proc/<pid>/root)."""
    node = stack.API_NODES[0]
    pid = stack.node_pid(node)
    name = stack.role_defaults("api")["api_container_name"]
    info = json.loads(stack.node(node, "docker", "inspect", name))[0]
    env = dict(e.split("=", 1) for e in info["Config"]["Env"])
    mounts = {m["Destination"]: m["Source"] for m in info["Mounts"]}

    def here(path: str) -> str | None:
        dest = next((d for d in mounts if path.startswith(d + "/")), None)
        return f"/proc/{pid}/root{mounts[dest]}{path[len(dest) :]}" if path and dest else None

    return {
        "netns": stack.netns(node),
        "urls": env["HURTIG_AMQP_URLS"].split(","),
        "password_file": here(env["HURTIG_AMQP_PASSWORD_FILE"]),
        "tls": {
            "ca_file": here(env.get("HURTIG_AMQP_CA_FILE", "")),
            "cert_file": here(env.get("HURTIG_AMQP_CERT_FILE", "")),
            "key_file": here(env.get("HURTIG_AMQP_KEY_FILE", "")),
        },
    }


def broker_baseline(rate: float, function: str = "record") -> dict[str, Any]:
    """The raw publisher (bench/rawpub.py) in the first API node's network namespace: the
    API's user, TLS and message, as many connections as the API processes hold, wrk's
    concurrency and duration, at `rate` messages/s (what the API's jobs reached: a quorum
    queue's cost per message falls as its batches grow with the rate); the brokers' CPU per
    message from their cgroups."""
    client = api_client()
    users = stack.node(stack.BROKER, "rabbitmqctl", "-q", "list_connections", "user").split()
    settings = {
        **{k: client[k] for k in ("urls", "password_file", "tls")},
        "exchange": stack.contract()["hurtig_jobs_exchange"],
        "function": function,
        "payload": BODY,
        "connections": max(1, users.count(stack.contract()["hurtig_api_user"])),
        "in_flight": WRK_CONNECTIONS,
        "seconds": WRK_SECONDS,
        "rate": rate,
    }
    stack.purge(f"jobs.{function}")
    before = cpu.snapshot(stack.hosts())
    out = subprocess.run(
        [*client["netns"], sys.executable, str(Path(__file__).with_name("rawpub.py"))],
        input=json.dumps(settings), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    used = cpu_by_group(cpu.spent(before, cpu.snapshot(stack.hosts())))
    stack.purge(f"jobs.{function}")
    result = json.loads(out) | {k: settings[k] for k in ("connections", "in_flight")}
    result["target_rate"], result["rate"] = rate, round(result["messages"] / result["seconds"], 1)
    result["cpu_s"] = used
    result["broker_cpu_us_per_message"] = round(used["broker"] / result["messages"] * 1e6, 1)
    print(f"[bench] raw publisher: {result}", flush=True)
    return result


def ready_jobs(queue: str) -> int:
    """A queue's ready messages, read as soon as the broker answers."""
    depth: list[int] = []
    stack.wait_for(lambda: depth.append(stack.queue_state(queue)[0]) or depth[-1] >= 0, 60, f"{queue} depth read")
    return depth[-1]


def drained(queue: str) -> bool:
    return stack.queue_state(queue)[0] == 0


def auth_overhead(jobs: dict[str, float]) -> dict[str, list[dict[str, float]]]:
    """The job POSTs with the API's key check off (api.yml -e api_auth=false) and on again,
    alternated: three runs each, the first with keys being `jobs`. The queue is purged
    before each run, so that every run starts from an empty queue; auth_overhead_ratio
    compares each later run with keys with the runs without keys around it (bracketed_ratio)."""
    on, off = [jobs], []
    for _ in range(3):
        stack.playbook("api.yml", "-e", "api_auth=false")
        try:
            stack.purge("jobs.record")
            off.append(wrk("/v1/functions/record/jobs", post=True))
        finally:
            stack.playbook("api.yml")
        if len(on) < 3:
            stack.purge("jobs.record")
            on.append(wrk("/v1/functions/record/jobs", post=True))
    print(f"[bench] jobs/s with keys {[r['rps'] for r in on]}, without {[r['rps'] for r in off]}", flush=True)
    return {"jobs_auth_on": on, "jobs_auth_off": off}


def bracketed_ratio(on: list[dict], off: list[dict]) -> float:
    """Jobs/s with keys over the mean of the two runs without keys just before and after
    it (auth_overhead's order: off, on, off, on, off after the first `on`, the jobs case):
    a rate that drifts through the sequence (the brokers' queue and caches warming) cancels
    out, where the medians of each side compared the later runs without keys with the
    earlier ones with keys. The median of those ratios."""
    return statistics.median(around(on[i], off[i - 1], off[i]) for i in range(1, min(len(on), len(off))))


@contextlib.contextmanager
def kept_empty(queue: str, every_s: float = 2.0) -> Iterator[None]:
    """Purge `queue` every `every_s` seconds meanwhile. Without workers, 35 s of jobs at a
    few thousand a second reach the function's max_ready (100,000): the case would measure
    the 503s of back-pressure, not the path. The purges' broker CPU counts in the case."""
    stop = threading.Event()

    def purge() -> None:
        while not stop.wait(every_s):
            with contextlib.suppress(Exception):  # a purge missed is caught up by the next
                stack.purge(queue)

    thread = threading.Thread(target=purge, daemon=True)
    stack.purge(queue)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def many_clients() -> dict[str, dict]:
    """Thousands of keep-alive clients (exempt from the per-client limits, as a load
    balancer's address would be) on the proxied API path and on the job path, without
    workers, each between two runs of 64 clients of the same load generator (`around`)."""
    healthz = "/bench/api-healthz"
    runs = {
        "api_healthz_h2load": h2load(healthz, connections=WRK_CONNECTIONS),
        "api_healthz_many_clients": h2load(healthz),
        "api_healthz_h2load_after": h2load(healthz, connections=WRK_CONNECTIONS),
    }
    stack.playbook("scale.yml", "-e", "function=record", "-e", "replicas=0")
    jobs = "/v1/functions/record/jobs"
    for name, connections in (
        ("jobs_h2load", WRK_CONNECTIONS),
        ("jobs_many_clients", MANY_CLIENTS),
        ("jobs_h2load_after", WRK_CONNECTIONS),
    ):
        with kept_empty("jobs.record"):
            runs[name] = h2load(jobs, post=True, connections=connections)
    return runs


def around(run: dict, before: dict, after: dict) -> float:
    """A run's rate over the mean of the baseline runs just before and after it (the
    4,096 clients against 64; bracketed_ratio's runs with keys against those without). The
    64-client rate moves from run to run on this machine (17,700 to 21,500 req/s within
    minutes, 2026-12-07): against the run before only, that movement was the ratio's."""
    return run["rps"] / ((before["rps"] + after["rps"]) / 2)


def backlog_drain_rps(seconds: int = WRK_SECONDS) -> float:
    """What the two record workers process with the machine to themselves: wrk's jobs of
    `seconds` posted with the workers stopped (tens of thousands, under the queue's bound),
    then the workers started and the backlog drained from the moment it is read. (It was
    the 4,096 clients' backlog until their cases kept the queue purged: then it measured 0.)"""
    stack.playbook("scale.yml", "-e", "function=record", "-e", "replicas=0")
    wrk("/v1/functions/record/jobs", post=True, seconds=seconds)
    stack.playbook("scale.yml", "-e", "function=record", "-e", "replicas=2")
    backlog = ready_jobs("jobs.record")
    drain_s = stack.wait_for(lambda: drained("jobs.record"), 600, "jobs.record drained", 0.1)
    print(f"[bench] backlog of {backlog} jobs drained in {drain_s:.1f} s", flush=True)
    return round(backlog / drain_s, 1)


def many_figures(r: dict) -> None:
    """The thousands-of-clients cases into `r`: their runs, and each ratio to 64 clients."""
    runs = many_clients()
    r.setdefault("wrk_runs", {}).update(runs)
    r["many_clients"] = MANY_CLIENTS
    for case in ("api_healthz", "jobs"):
        ratio = around(runs[f"{case}_many_clients"], runs[f"{case}_h2load"], runs[f"{case}_h2load_after"])
        r[f"many_clients_{case.removeprefix('api_')}_ratio"] = round(ratio, 3)
    many = (runs["api_healthz_many_clients"], runs["jobs_many_clients"])
    r["many_clients_socket_errors"] = sum(m["errors"] for m in many)
    r["many_clients_non_2xx"] = sum(m["non_2xx"] for m in many)


def http_figures(r: dict) -> None:
    """The HTTP cases: ceiling, API health with and without keepalive, jobs without and with
    workers (wrk), and thousands of clients (h2load)."""
    stack.playbook("scale.yml", "-e", "function=record", "-e", "replicas=2")
    stack.wait_for(lambda: drained("jobs.record"), 600, "jobs.record drained")

    ceiling = wrk("/bench/return202")
    healthz = wrk("/bench/api-healthz")
    no_keepalive = wrk("/bench/api-healthz-no-keepalive")
    # The accept path with its consumers stopped: in production the workers run on other
    # hosts, here they would take CPU from the path measured. Then with them, for the record.
    stack.playbook("scale.yml", "-e", "function=record", "-e", "replicas=0")
    jobs = wrk("/v1/functions/record/jobs", post=True)
    # the same HTTP path at the jobs' rate: what a /healthz costs when an API process, like
    # with jobs, handles a few hundred requests a second instead of all it can
    healthz_paced = wrk("/bench/api-healthz", pace=jobs["rps"])
    baseline = broker_baseline(rate=jobs["rps"])
    auth = auth_overhead(jobs)
    stack.playbook("scale.yml", "-e", "function=record", "-e", "replicas=2")
    stack.wait_for(lambda: drained("jobs.record"), 600, "jobs.record drained")
    jobs_with_workers = wrk("/v1/functions/record/jobs", post=True)
    # What the two record workers process per second while the whole path loads the same
    # cores: the jobs accepted in that run (from an empty queue) less those still waiting
    # at its end. The end-to-end sweep's "half load" is half of this.
    left = ready_jobs("jobs.record")
    accepted = jobs_with_workers["rps"] * jobs_with_workers["seconds"]
    processed_rps = round(max(0.0, accepted - left) / jobs_with_workers["seconds"], 1)
    many_figures(r)
    drain_rps = backlog_drain_rps()
    r["wrk_runs"] = {
        "return202": ceiling,
        "api_healthz": healthz,
        "api_healthz_no_keepalive": no_keepalive,
        "api_healthz_at_job_rate": healthz_paced,
        "jobs": jobs,
        "jobs_with_workers": jobs_with_workers,
        **r.get("wrk_runs", {}),
        **auth,
    }
    r["nginx_return202_rps"] = ceiling["rps"]
    r["ingress_jobs_rps"] = jobs["rps"]
    r["ingress_jobs_with_workers_rps"] = jobs_with_workers["rps"]
    r["ingress_ratio"] = round(jobs["rps"] / ceiling["rps"], 3)
    r["api_healthz_rps"] = healthz["rps"]
    r["api_publish_ratio"] = round(jobs["rps"] / healthz["rps"], 3)
    r["keepalive_on_rps"] = healthz["rps"]
    r["keepalive_off_rps"] = no_keepalive["rps"]
    r["keepalive_ratio"] = round(healthz["rps"] / no_keepalive["rps"], 2)
    r["auth_overhead_ratio"] = round(bracketed_ratio(auth["jobs_auth_on"], auth["jobs_auth_off"]), 3)

    r["record_processed_rps"] = processed_rps
    r["record_drain_rps"] = drain_rps
    r["broker_baseline"] = baseline
    cpu_figures(r)


def cpu_figures(r: dict) -> None:
    """The CPU keys, from the cases' CPU per request (http_figures' `wrk_runs`)."""
    per = {k: run["cpu_us_per_request"] for k, run in r["wrk_runs"].items() if "cpu_us_per_request" in run}
    r["nginx_cpu_us_per_request"] = per["return202"]["nginx"]
    r["api_cpu_us_per_healthz"] = per["api_healthz"]["api"]
    r["api_cpu_us_per_job"] = per["jobs"]["api"]
    r["broker_cpu_us_per_job"] = per["jobs"]["broker"]
    r["api_job_vs_healthz_cpu"] = round(r["api_cpu_us_per_job"] / r["api_cpu_us_per_healthz"], 2)
    paced = per["api_healthz_at_job_rate"]["api"]
    r["api_cpu_us_per_healthz_at_job_rate"] = paced
    r["api_job_vs_healthz_cpu_at_job_rate"] = round(r["api_cpu_us_per_job"] / paced, 2)
    # the brokers' cost of the API's jobs against a raw publisher's, both with no consumer
    r["broker_raw_cpu_us_per_message"] = r["broker_baseline"]["broker_cpu_us_per_message"]
    r["broker_vs_raw_cpu"] = round(r["broker_cpu_us_per_job"] / r["broker_raw_cpu_us_per_message"], 2)
