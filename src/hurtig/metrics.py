"""The API's Prometheus metrics: jobs accepted per function, requests rejected per reason and
status, publish-to-confirm latency, and whether the broker connection is usable.

An API instance runs several processes on one socket, and a scrape reaches one of them. So
that every scrape sees the whole instance, each process writes its figures to a directory
the instance's processes share (`<pid>.json`, atomically, every second and on each scrape),
and /metrics sums the files: counters of a process that has ended still count, so no
counter goes back while the instance runs; another process's figures are at most a second
old. Without a directory a process reports its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# a process whose file is older than this no longer counts towards broker_ready
FRESH_S = 5.0


class Metrics:
    def __init__(self, share_dir: str | None = None) -> None:
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[tuple[str, int]] = Counter()  # (reason, HTTP status)
        self.latency_buckets = [0] * len(LATENCY_BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.share_dir = Path(share_dir) if share_dir else None

    def observe(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_count += 1
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_buckets[i] += 1

    def snapshot(self, ready: bool) -> dict[str, Any]:
        return {
            "at": time.time(),
            "ready": ready,
            "accepted": dict(self.accepted),
            "rejected": [[r, s, n] for (r, s), n in self.rejected.items()],
            "buckets": self.latency_buckets,
            "sum": self.latency_sum,
            "count": self.latency_count,
        }

    def share(self, ready: bool) -> None:
        """Write this process's figures for the others (no directory: nothing)."""
        if self.share_dir is None:
            return
        path = self.share_dir / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot(ready)))
        tmp.replace(path)

    def _shared(self) -> list[dict[str, Any]]:
        assert self.share_dir is not None
        found = []
        for path in self.share_dir.glob("*.json"):
            with contextlib.suppress(OSError, ValueError):  # a file being replaced: the next scrape has it
                found.append(json.loads(path.read_text()))
        return found

    def render(self, ready: bool) -> str:
        if self.share_dir is None:
            return _render([self.snapshot(ready)])
        self.share(ready)
        return _render(self._shared())


def _render(snapshots: list[dict[str, Any]]) -> str:
    accepted: Counter[str] = Counter()
    rejected: Counter[tuple[str, int]] = Counter()
    buckets = [0] * len(LATENCY_BUCKETS)
    total, count = 0.0, 0
    for snap in snapshots:
        accepted.update(snap["accepted"])
        rejected.update({(r, s): n for r, s, n in snap["rejected"]})
        buckets = [a + b for a, b in zip(buckets, snap["buckets"], strict=True)]
        total += snap["sum"]
        count += snap["count"]
    now = time.time()
    live = [s for s in snapshots if now - s["at"] <= FRESH_S] or snapshots
    ready = all(s["ready"] for s in live)
    lines = [
        "# HELP hurtig_api_jobs_accepted_total Jobs confirmed by the broker and answered 202.",
        "# TYPE hurtig_api_jobs_accepted_total counter",
    ]
    lines += [f'hurtig_api_jobs_accepted_total{{function="{f}"}} {n}' for f, n in sorted(accepted.items())]
    lines += [
        "# HELP hurtig_api_jobs_rejected_total Requests not accepted, by reason and HTTP status.",
        "# TYPE hurtig_api_jobs_rejected_total counter",
    ]
    lines += [
        f'hurtig_api_jobs_rejected_total{{reason="{r}",status="{s}"}} {n}' for (r, s), n in sorted(rejected.items())
    ]
    lines += [
        "# HELP hurtig_api_publish_seconds Publish-to-confirm latency.",
        "# TYPE hurtig_api_publish_seconds histogram",
    ]
    lines += [
        f'hurtig_api_publish_seconds_bucket{{le="{b}"}} {n}' for b, n in zip(LATENCY_BUCKETS, buckets, strict=True)
    ]
    lines += [
        f'hurtig_api_publish_seconds_bucket{{le="+Inf"}} {count}',
        f"hurtig_api_publish_seconds_sum {total:.6f}",
        f"hurtig_api_publish_seconds_count {count}",
        "# HELP hurtig_api_broker_ready 1 when the broker connection of every live process is usable.",
        "# TYPE hurtig_api_broker_ready gauge",
        f"hurtig_api_broker_ready {int(ready)}",
        "# HELP hurtig_api_processes Processes of this instance that reported within the last 5 s.",
        "# TYPE hurtig_api_processes gauge",
        f"hurtig_api_processes {len([s for s in snapshots if now - s['at'] <= FRESH_S])}",
    ]
    return "\n".join(lines) + "\n"
