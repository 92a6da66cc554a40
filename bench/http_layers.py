"""The API's HTTP layer against an alternative, on the same job path, in one run.

hurtig.api (aiohttp on uvloop) and bench/asgi_job.py (the same key check, validation, job
id, message and publisher, as a bare ASGI app on uvicorn with httptools and uvloop), one
process each, against the test broker (bench/amqp_clients.py starts it; plain AMQP on a
loopback port). For each: `/healthz` and accepted jobs with wrk (WRK_CONNECTIONS keep-alive
connections, one thread, SECONDS per case), the server's CPU per request from /proc (user
and system time of its processes). Runs alternate, RUNS times; the medians go to
bench/http_layers.json with their ranges.

    python bench/http_layers.py   (wrk and uvicorn from the project's venv; see docs/benchmarks.md)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from amqp_clients import QUEUE, purge, start_broker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import _free_port

from hurtig import auth

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key-0123456789abcdefghij"
BODY = '{"task":"Hello...","n":12345,"tags":["a","b","c"]}'
LUA = f"""wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {KEY}"
"""
CONNECTIONS = int(os.environ.get("WRK_CONNECTIONS", "32"))
SECONDS = int(os.environ.get("SECONDS", "8"))
RUNS = int(os.environ.get("RUNS", "3"))


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children (the API's supervisor forks one)."""
    pids = [pid, *(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    total = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wrk(url: str, script: str | None, seconds: int) -> int:
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", url, *(["-s", script] if script else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"{url}: {bad.group(1)} answers were not 2xx")
    return total


def serve(layer: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    if layer == "aiohttp":
        cmd = [sys.executable, "-m", "hurtig.api"]
    else:
        uvicorn = shutil.which("uvicorn", path=str(Path(sys.executable).parent)) or "uvicorn"
        cmd = [uvicorn, "asgi_job:app", "--app-dir", str(ROOT / "bench"), "--port", str(port)]
        cmd += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit(f"{layer} did not become ready")
        time.sleep(0.2)


def measure(layer: str, broker_url: str, keys: Path, lua: str) -> dict[str, float]:
    port = _free_port()
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        HURTIG_AMQP_URL=broker_url,
        HURTIG_EXCHANGE="",  # the default exchange routes to the queue named like the function
        HURTIG_FUNCTIONS=json.dumps([{"name": QUEUE}]),
        HURTIG_API_PORT=str(port),
        HURTIG_API_WORKERS="1",
        HURTIG_API_KEYS_FILE=str(keys),
        HURTIG_LOG_LEVEL="WARNING",
    )
    proc = serve(layer, env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        wrk(f"{base}/healthz", None, 2)  # warm-up
        figures: dict[str, float] = {}
        for case, path, script in (("healthz", "/healthz", None), ("job", f"/v1/functions/{QUEUE}/jobs", lua)):
            before = cpu_seconds(proc.pid)
            n = wrk(base + path, script, SECONDS)
            figures[f"{case}_rps"] = n / SECONDS
            figures[f"{case}_cpu_us"] = (cpu_seconds(proc.pid) - before) / n * 1e6
        figures["job_vs_healthz_cpu"] = figures["job_cpu_us"] / figures["healthz_cpu_us"]
        return figures
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    if len(sys.argv) > 1:
        print(__doc__)
        return 0 if sys.argv[1] in ("-h", "--help") else 2
    broker = start_broker()
    workdir = Path(tempfile.mkdtemp())
    keys = workdir / "keys.json"
    keys.write_text(json.dumps([{"name": "bench", "sha256": [auth.digest(KEY)], "functions": ["*"]}]))
    lua = workdir / "post.lua"
    lua.write_text(LUA)
    runs: dict[str, list[dict[str, float]]] = {"aiohttp": [], "uvicorn": []}
    try:
        for _ in range(RUNS):
            for layer, results in runs.items():
                purge(broker)
                results.append(measure(layer, broker.url(), keys, str(lua)))
                print(f"[http_layers] {layer}: {results[-1]}", flush=True)
    finally:
        subprocess.run(["docker", "rm", "-f", broker.container or ""], capture_output=True, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
    out: dict[str, Any] = {"connections": CONNECTIONS, "seconds": SECONDS, "runs": RUNS}
    for layer, results in runs.items():
        for key in results[0]:
            values = [r[key] for r in results]
            out[f"{layer}_{key}"] = round(statistics.median(values), 2)
            out[f"{layer}_{key}_range"] = [round(min(values), 2), round(max(values), 2)]
    out["uvicorn_vs_aiohttp_job_cpu"] = round(out["uvicorn_job_cpu_us"] / out["aiohttp_job_cpu_us"], 2)
    print(json.dumps(out, indent=2))
    (ROOT / "bench" / "http_layers.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
