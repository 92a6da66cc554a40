"""The API's Prometheus metrics: jobs accepted per function, requests rejected per reason,
publish-to-confirm latency, and whether the broker connection is usable."""

from __future__ import annotations

from collections import Counter

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.latency_buckets = [0] * len(LATENCY_BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0

    def observe(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_count += 1
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_buckets[i] += 1

    def render(self, ready: bool) -> str:
        lines = [
            "# HELP hurtig_api_jobs_accepted_total Jobs confirmed by the broker and answered 202.",
            "# TYPE hurtig_api_jobs_accepted_total counter",
        ]
        lines += [f'hurtig_api_jobs_accepted_total{{function="{f}"}} {n}' for f, n in sorted(self.accepted.items())]
        lines += [
            "# HELP hurtig_api_jobs_rejected_total Requests not accepted, by reason.",
            "# TYPE hurtig_api_jobs_rejected_total counter",
        ]
        lines += [f'hurtig_api_jobs_rejected_total{{reason="{r}"}} {n}' for r, n in sorted(self.rejected.items())]
        lines += [
            "# HELP hurtig_api_publish_seconds Publish-to-confirm latency.",
            "# TYPE hurtig_api_publish_seconds histogram",
        ]
        lines += [
            f'hurtig_api_publish_seconds_bucket{{le="{b}"}} {n}'
            for b, n in zip(LATENCY_BUCKETS, self.latency_buckets, strict=True)
        ]
        lines += [
            f'hurtig_api_publish_seconds_bucket{{le="+Inf"}} {self.latency_count}',
            f"hurtig_api_publish_seconds_sum {self.latency_sum:.6f}",
            f"hurtig_api_publish_seconds_count {self.latency_count}",
            "# HELP hurtig_api_broker_ready 1 when the broker connection is usable.",
            "# TYPE hurtig_api_broker_ready gauge",
            f"hurtig_api_broker_ready {int(ready)}",
        ]
        return "\n".join(lines) + "\n"
