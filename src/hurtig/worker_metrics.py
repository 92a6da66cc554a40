"""The workers' Prometheus metrics, one view per worker node.

Every worker container writes its figures to a directory of its node (`<container
name>.json`, atomically, every second and when it stops): jobs started, succeeded, failed
(the handler raised or timed out), retried and dead-lettered, the handler's duration, the
jobs in flight. A container that starts again, or is created again with the same name,
reads its file first and counts on from it, so no counter goes back.

`hurtig-worker-metrics` serves `/metrics` on the node's private address: the sum of every
file per function (counters of containers that stopped still count), the jobs in flight of
containers that wrote within the last 5 s, and how many did. It only reads the directory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hurtig import logs
from hurtig.metrics import Histogram

log = logging.getLogger("hurtig.worker_metrics")

OUTCOMES = ("started", "succeeded", "failed", "retried", "dead_lettered")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
FRESH_S = 5.0


class WorkerMetrics:
    """One container's figures (one function), written to `<directory>/<name>.json`."""

    def __init__(self, function: str, directory: str | None, name: str) -> None:
        self.function = function
        self.path = Path(directory) / f"{name}.json" if directory else None
        self.counts: Counter[str] = Counter()
        self.duration = Histogram(DURATION_BUCKETS)
        self.in_flight = 0
        self._load()

    def _load(self) -> None:
        """Count on from this container's earlier figures (a restart, a re-creation)."""
        if self.path is None:
            return
        try:
            old = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        if old.get("function") != self.function or len(old.get("buckets", [])) != len(DURATION_BUCKETS):
            return
        with contextlib.suppress(KeyError, TypeError, ValueError):  # a damaged file: count from zero
            self.duration.add(old)
            self.counts.update({k: int(v) for k, v in old.get("counts", {}).items() if k in OUTCOMES})

    def count(self, outcome: str) -> None:
        self.counts[outcome] += 1

    def observe(self, seconds: float) -> None:
        self.duration.observe(seconds)

    def snapshot(self) -> dict[str, Any]:
        return {
            "at": time.time(),
            "function": self.function,
            "counts": dict(self.counts),
            **self.duration.fields(),
            "in_flight": self.in_flight,
        }

    def write(self) -> None:
        if self.path is None:
            return
        try:
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps(self.snapshot()))
            tmp.replace(self.path)
        except OSError as exc:  # metrics never stop jobs
            log.debug("metrics not written", extra={"error": repr(exc)})


def read_all(directory: Path) -> list[dict[str, Any]]:
    found = []
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            snap = json.loads(path.read_text())
            if isinstance(snap.get("function"), str) and len(snap["buckets"]) == len(DURATION_BUCKETS):
                found.append(snap)
    return found


def render(snapshots: list[dict[str, Any]], now: float | None = None) -> str:
    now = time.time() if now is None else now
    counts: dict[str, Counter[str]] = {}
    durations: dict[str, Histogram] = {}
    in_flight: Counter[str] = Counter()
    live: Counter[str] = Counter()
    for snap in snapshots:
        fn = snap["function"]
        counts.setdefault(fn, Counter()).update({k: int(v) for k, v in snap["counts"].items() if k in OUTCOMES})
        durations.setdefault(fn, Histogram(DURATION_BUCKETS)).add(snap)
        if now - float(snap["at"]) <= FRESH_S:
            in_flight[fn] += int(snap["in_flight"])
            live[fn] += 1
    fns = sorted(counts)
    lines = []
    for outcome in OUTCOMES:
        name = f"hurtig_worker_jobs_{outcome}_total"
        lines += [f"# HELP {name} Jobs {outcome.replace('_', '-')} by this node's workers.", f"# TYPE {name} counter"]
        lines += [f'{name}{{function="{fn}"}} {counts[fn][outcome]}' for fn in fns]
    lines += [
        "# HELP hurtig_worker_handler_seconds How long the handler ran (succeeded or failed).",
        "# TYPE hurtig_worker_handler_seconds histogram",
    ]
    for fn in fns:
        lines += durations[fn].lines("hurtig_worker_handler_seconds", f'function="{fn}",')
    lines += [
        "# HELP hurtig_worker_jobs_in_flight Jobs being handled now.",
        "# TYPE hurtig_worker_jobs_in_flight gauge",
    ]
    lines += [f'hurtig_worker_jobs_in_flight{{function="{fn}"}} {in_flight[fn]}' for fn in fns]
    lines += [
        "# HELP hurtig_worker_containers Worker containers that reported within the last 5 s.",
        "# TYPE hurtig_worker_containers gauge",
    ]
    lines += [f'hurtig_worker_containers{{function="{fn}"}} {live[fn]}' for fn in fns]
    return "\n".join(lines) + "\n"


def serve(directory: Path, address: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = render(read_all(directory)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # a scrape every 15 s is not news

    return ThreadingHTTPServer((address, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hurtig-worker-metrics", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=os.environ.get("HURTIG_METRICS_DIR", "/var/lib/hurtig-metrics"))
    parser.add_argument("--address", default=os.environ.get("HURTIG_METRICS_ADDRESS", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("HURTIG_METRICS_PORT", "9102")))
    args = parser.parse_args(argv)
    logs.setup(os.environ.get("HURTIG_LOG_LEVEL", "INFO"))
    server = serve(Path(args.dir), args.address, args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 of its container
    log.info("serving", extra={"address": args.address, "port": args.port, "dir": args.dir})
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
