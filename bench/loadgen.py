"""The load generators of `make bench`: wrk (64 keep-alive clients, or paced) and h2load
(thousands of clients), each in the ingress node's network namespace against its loopback,
with the CPU each group of processes spent per request (cgroups)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from typing import Any

import cpu
import stack

WRK_THREADS = int(os.environ.get("WRK_THREADS", "2"))
WRK_CONNECTIONS = int(os.environ.get("WRK_CONNECTIONS", "64"))
WRK_SECONDS = int(os.environ.get("WRK_SECONDS", "10"))
# wrk counts a request still unanswered after WRK_TIMEOUT (and, at each of its 2-s checks,
# a connection that has not sent its first request yet) as a timeout; the cases of
# thousands of clients use h2load instead (h2load below)
WRK_TIMEOUT = os.environ.get("WRK_TIMEOUT", "10s")
MANY_CLIENTS = int(os.environ.get("MANY_CLIENTS", "4096"))
# their TLS handshakes are a fixed cost at the start of a run: h2load lets every client
# connect during a warm-up, then measures the steady state of thousands of connected clients
MANY_SECONDS = int(os.environ.get("MANY_SECONDS", "30"))
MANY_WARMUP_S = int(os.environ.get("MANY_WARMUP_S", "5"))

# the job every POST case sends: wrk's script and the raw publisher's message
BODY = {"bench": True}
POST_LUA = """wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "%s"
"""


# groups of processes whose CPU time each case records: a node's container and the
# containers its own engine runs; the load generator is this script's children (wrk)
GROUPS = {"nginx": (stack.INGRESS_NODE,), "api": stack.API_NODES, "broker": stack.BROKERS, "workers": (stack.WORKER,)}


def cpu_by_group(spent: dict[str, float]) -> dict[str, float]:
    """CPU seconds of each group (cpu.spent over a case), the load generator's and the wall time."""
    out = {g: round(sum(v for k, v in spent.items() if k.split("/")[0] in nodes), 3) for g, nodes in GROUPS.items()}
    return out | {"load": spent["child processes"], "wall": spent["wall"]}


def cpu_us_per(used: dict[str, float], count: int) -> dict[str, float]:
    """µs of CPU each group spent per request or job: cpu_by_group's seconds over `count`."""
    return {g: round(v / max(count, 1) * 1e6, 1) for g, v in used.items() if g != "wall"}


def wrk(
    path: str, post: bool = False, connections: int = WRK_CONNECTIONS, seconds: int = WRK_SECONDS, pace: float = 0
) -> dict:
    """Requests per second (2xx only), latency percentiles and the CPU each group of
    processes spent per request, of one wrk run in the ingress node's network namespace.
    With `pace`, each connection waits connections/pace seconds before its next request
    (wrk's delay()), so that the run sends a little under `pace` requests a second."""
    netns, url = stack.ingress_netns()
    cmd = [*netns, "wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", f"--timeout={WRK_TIMEOUT}"]
    cmd.append("--latency")
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        if post:
            lua.write(POST_LUA % (json.dumps(BODY), stack.auth()["Authorization"]))
        if pace:
            lua.write(f"function delay() return {1000 * connections / pace:.3f} end\n")
        lua.flush()
        if post or pace:
            cmd += ["-s", lua.name]
        before, ticks = cpu.snapshot(stack.hosts()), cpu.machine_ticks()
        out = subprocess.run([*cmd, url + path], capture_output=True, text=True, check=True).stdout
        used = cpu_by_group(cpu.spent(before, cpu.snapshot(stack.hosts())))
        machine = cpu.machine_shares(ticks, cpu.machine_ticks())
    total = int(re.search(r"(\d+) requests in", out).group(1))
    elapsed = float(re.search(r"requests in ([\d.]+)s", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = int(bad.group(1)) if bad else 0

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\b", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    result: dict[str, Any] = {
        "connections": connections,
        "seconds": elapsed,
        "requests": total,
        "rps": round((total - non2xx) / elapsed, 1),
        "p50_ms": round(pct("50"), 2),
        "p99_ms": round(pct("99"), 2),
        "non_2xx": non2xx,
        "cpu_s": used,
        "cpu_us_per_request": cpu_us_per(used, total),
        "machine": machine,
    }
    if errors:
        result["socket_errors"] = errors.group(1).strip()
    shown = {k: v for k, v in result.items() if k != "cpu_s"}
    print(f"[bench] wrk {'POST' if post else 'GET'} {path}: {shown}", flush=True)
    return result


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def h2load_counts(out: str) -> dict[str, Any]:
    """What an h2load run printed: its request counts, status classes and request times."""
    names = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    counts = re.search(r"requests: " + ", ".join(rf"(\d+) {n}" for n in names), out).groups()
    classes = ("2xx", "3xx", "4xx", "5xx")
    codes = re.search(r"status codes: " + ", ".join(rf"(\d+) {c}" for c in classes), out).groups()
    times = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out).groups()
    return (
        dict(zip(names, map(int, counts), strict=True))
        | dict(zip(classes, map(int, codes), strict=True))
        | {"min_ms": _ms(times[0]), "max_ms": _ms(times[1]), "mean_ms": _ms(times[2])}
    )


def h2load(
    path: str, post: bool = False, connections: int = MANY_CLIENTS, seconds: int = MANY_SECONDS, rps: int = 0
) -> dict:
    """The cases of thousands of clients: h2load (HTTP/1.1, keep-alive) in the ingress node's
    network namespace. Every client connects during the warm-up (MANY_WARMUP_S), which is
    not measured; `errors` counts the requests that failed on their connection (errored) or
    timed out. Not wrk: at each of its 2-s checks, wrk counts every connection that has not
    yet sent its first request as a timeout, so with 4,096 clients its "timeouts" were the
    TLS handshakes still under way two seconds after the start, not requests that failed.
    The CPU figures cover the measured seconds, the load generator's its whole run. `rps`
    paces each client at that many requests a second (0: each sends on its answer)."""
    netns, url = stack.ingress_netns()
    cmd = [*netns, "h2load", "--h1", f"-t{WRK_THREADS}", f"-c{connections}", f"-D{seconds}"]
    cmd += [f"--warm-up-time={MANY_WARMUP_S}", *([f"--rps={rps}"] if rps else [])]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as body:
        if post:
            body.write(json.dumps(BODY))
            body.flush()
            cmd += ["-d", body.name, "-H", "content-type: application/json"]
            cmd += ["-H", f"authorization: {stack.auth()['Authorization']}"]
        run = subprocess.Popen([*cmd, url + path], stdout=subprocess.PIPE, text=True)
        time.sleep(MANY_WARMUP_S + 0.5)  # the clients have connected; their requests are measured
        before, ticks = cpu.snapshot(stack.hosts()), cpu.machine_ticks()
        out, _ = run.communicate()
        used = cpu_by_group(cpu.spent(before, cpu.snapshot(stack.hosts())))
        machine = cpu.machine_shares(ticks, cpu.machine_ticks())
    if run.returncode != 0:
        raise RuntimeError(f"h2load failed ({run.returncode}): {out[-2000:]}")
    n = h2load_counts(out)
    result: dict[str, Any] = {
        "tool": "h2load",
        "connections": connections,
        "seconds": seconds,
        "requests": n["total"],
        "rps": round(n["2xx"] / seconds, 1),
        "mean_ms": round(n["mean_ms"], 2),
        "max_ms": round(n["max_ms"], 2),
        "non_2xx": n["total"] - n["2xx"],
        "failed": n["failed"],
        "errors": n["errored"] + n["timeout"],
        "cpu_s": used,
        "cpu_us_per_request": cpu_us_per(used, n["total"]),
        "machine": machine,
    }
    shown = {k: v for k, v in result.items() if k != "cpu_s"}
    print(f"[bench] h2load {'POST' if post else 'GET'} {path}: {shown}", flush=True)
    return result
