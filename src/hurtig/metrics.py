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

import bisect
import contextlib
import itertools
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# a process whose file is older than this no longer counts towards broker_ready
FRESH_S = 5.0


class Histogram:
    """A Prometheus histogram: cumulative buckets (a value counts in every bucket whose
    bound, `le`, it does not exceed), a sum and a count. The API and the workers' metrics
    endpoint keep theirs as one of these, in their files as `buckets`, `sum`, `count`.
    `observe` is on the API's hot path: it counts a value in its own bucket only (one
    increment, not one per bucket above it); `buckets` adds them up when read."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.hits = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last: above every bound
        self.total = 0.0
        self.count = 0

    @property
    def buckets(self) -> list[int]:
        return list(itertools.accumulate(self.hits[:-1]))

    def observe(self, seconds: float) -> None:
        self.total += seconds
        self.count += 1
        self.hits[bisect.bisect_left(self.bounds, seconds)] += 1

    def fields(self) -> dict[str, Any]:
        return {"buckets": self.buckets, "sum": self.total, "count": self.count}

    def add(self, snapshot: dict[str, Any]) -> None:
        """Add the `fields()` of another process or container (a file's content)."""
        cumulative = [int(b) for b in snapshot["buckets"]]
        if len(cumulative) != len(self.bounds):
            raise ValueError(f"{len(cumulative)} buckets, not {len(self.bounds)}")
        count = int(snapshot["count"])
        below = [0, *cumulative]
        for i, n in enumerate([*cumulative, count]):
            self.hits[i] += n - below[i]
        self.total += float(snapshot["sum"])
        self.count += count

    def lines(self, name: str, labels: str = "") -> list[str]:
        """The exposition lines; `labels` like 'function="record",' come before `le`."""
        out = [f'{name}_bucket{{{labels}le="{b}"}} {n}' for b, n in zip(self.bounds, self.buckets, strict=True)]
        out.append(f'{name}_bucket{{{labels}le="+Inf"}} {self.count}')
        braces = f"{{{labels.rstrip(',')}}}" if labels else ""
        return [*out, f"{name}_sum{braces} {self.total:.6f}", f"{name}_count{braces} {self.count}"]


class Metrics:
    def __init__(self, share_dir: str | None = None) -> None:
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[tuple[str, int]] = Counter()  # (reason, HTTP status)
        self.latency = Histogram(LATENCY_BUCKETS)
        self.share_dir = Path(share_dir) if share_dir else None

    def observe(self, seconds: float) -> None:
        self.latency.observe(seconds)

    def snapshot(self, ready: bool) -> dict[str, Any]:
        return {
            "at": time.time(),
            "ready": ready,
            "accepted": dict(self.accepted),
            "rejected": [[r, s, n] for (r, s), n in self.rejected.items()],
            **self.latency.fields(),
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
    latency = Histogram(LATENCY_BUCKETS)
    for snap in snapshots:
        accepted.update(snap["accepted"])
        rejected.update({(r, s): n for r, s, n in snap["rejected"]})
        latency.add(snap)
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
    lines += latency.lines("hurtig_api_publish_seconds")
    lines += [
        "# HELP hurtig_api_broker_ready 1 when the broker connection of every live process is usable.",
        "# TYPE hurtig_api_broker_ready gauge",
        f"hurtig_api_broker_ready {int(ready)}",
        "# HELP hurtig_api_processes Processes of this instance that reported within the last 5 s.",
        "# TYPE hurtig_api_processes gauge",
        f"hurtig_api_processes {len([s for s in snapshots if now - s['at'] <= FRESH_S])}",
    ]
    return "\n".join(lines) + "\n"
