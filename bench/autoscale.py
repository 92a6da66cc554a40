"""Autoscaling on the full stack (staging's `burst`: the sleep handler, autoscale 1..6):

- autoscale_first_consumer_s: from the start of a burst that crosses the scale-out threshold
  (12 one-second jobs against min = 1 replica, target 4 per replica) to the second consumer
  attached, as the broker counts consumers (sampled every 50 ms); p95 over TRIALS trials,
  each from the idle minimum. The clock starts before the first POST leaves, so the figure
  includes the HTTP path and is an upper bound.
- autoscale_to_max_s: from the start of a burst of 60 such jobs to `max` consumers attached.
- autoscale_lost: the burst's accepted jobs (and the trials') that no worker logged as done,
  after it scaled out and back in to `min`.
- autoscale_flaps: direction changes of the controller (its `scale` log lines) less than
  scale_in_after_s apart, under a steady load at half the capacity of `max` (3 jobs/s of 1 s
  for STEADY_S seconds); autoscale_direction_changes counts them all.
- the start path of each trial (autoscale.start_path): the first POST -> the controller's
  decision -> its Docker start call returned -> the new worker's `consuming` log line;
- bench/autoscale.svg: replicas (consumers) and ready jobs over time during the burst.

    python bench/autoscale.py     (the stack up; merges its keys into bench/results.json)
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import threading
import time
from datetime import datetime

import pika
import stack

FUNCTION, QUEUE = "burst", "jobs.burst"
TRIALS = int(os.environ.get("AUTOSCALE_TRIALS", "5"))
STEADY_S = int(os.environ.get("AUTOSCALE_STEADY_S", "60"))
JOB = {"ms": 1000}
SVG = stack.ROOT / "bench" / "autoscale.svg"


class Sampler:
    """(seconds since start, ready, consumers) every 50 ms, over one AMQP connection."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int, int]] = []
        self.t0 = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn = pika.BlockingConnection(stack.amqp_admin_params())
        ch = conn.channel()
        while not self.stop.is_set():
            ok = ch.queue_declare(QUEUE, passive=True).method
            self.samples.append((time.monotonic() - self.t0, ok.message_count, ok.consumer_count))
            conn.sleep(0.05)
        conn.close()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def latest(self) -> tuple[float, int, int]:
        while not self.samples:
            time.sleep(0.01)
        return self.samples[-1]

    def until(self, predicate, timeout: float, what: str) -> float:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t, ready, consumers = self.latest()
            if predicate(ready, consumers):
                return t
            time.sleep(0.02)
        raise TimeoutError(what)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def done_jobs() -> set[str]:
    out = stack.node(stack.WORKER, "sh", "-c",
                     f"for c in $(docker ps -a -q --filter label=org.hurtig.function={FUNCTION}); "
                     "do docker logs $c 2>&1; done")  # fmt: skip
    return {json.loads(line)["job_id"] for line in out.splitlines() if '"job ok"' in line}


def _log(container: str, msg: str) -> list[dict]:
    out = stack.node(stack.WORKER, "sh", "-c", f"docker logs {container} 2>&1")
    events = [json.loads(line) for line in out.splitlines() if f'"msg": "{msg}"' in line]
    for e in events:
        e["t"] = datetime.fromisoformat(e["ts"]).timestamp()
    return events


def scale_events() -> list[dict]:
    return [
        e for e in _log("hurtig-autoscaler", "scale") if e.get("function") == FUNCTION and e.get("from") is not None
    ]


def start_path(trial_starts: list[float]) -> dict[str, list[float]]:
    """Per trial, from the controller's and the started worker's logs (one clock: the
    containers share the host's): the first POST leaving -> the scale decision -> the Docker
    start call returned -> the new worker consuming."""
    scales = [e for e in scale_events() if e["to"] > e["from"]]
    started = [e for e in _log("hurtig-autoscaler", "started") if e.get("function") == FUNCTION]
    out: dict[str, list[float]] = {"decision_s": [], "docker_start_s": [], "consuming_s": []}
    for w in trial_starts:
        decision = next((e for e in scales if e["t"] >= w), None)
        start = next((e for e in started if decision and e["t"] >= decision["t"]), None)
        if decision is None or start is None:
            continue
        consuming = next((e for e in _log(start["container"], "consuming") if e["t"] >= decision["t"]), None)
        out["decision_s"].append(round(decision["t"] - w, 3))
        out["docker_start_s"].append(round(start["t"] - decision["t"], 3))
        if consuming:
            out["consuming_s"].append(round(consuming["t"] - start["t"], 3))
    return out


def flaps(events: list[dict], quiet_s: float) -> tuple[int, int]:
    """(direction changes, those less than a quiet period after the step before)."""
    changes = fast = 0
    for before, after in itertools.pairwise(events):
        if (before["to"] > before["from"]) != (after["to"] > after["from"]):
            changes += 1
            gap = (datetime.fromisoformat(after["ts"]) - datetime.fromisoformat(before["ts"])).total_seconds()
            fast += gap < quiet_s
    return changes, fast


def plot(samples: list[tuple[float, int, int]], maximum: int) -> str:
    w, h, left, bottom = 640, 260, 50, 30
    span = max(t for t, _, _ in samples) or 1
    top_ready = max(*(r for _, r, _ in samples), 1)

    def x(t: float) -> float:
        return left + (w - left - 50) * t / span

    def y(v: float, vmax: float) -> float:
        return h - bottom - (h - bottom - 20) * v / vmax

    replicas = " ".join(f"{x(t):.1f},{y(c, maximum):.1f}" for t, _, c in samples)
    ready = " ".join(f"{x(t):.1f},{y(r, top_ready):.1f}" for t, r, _ in samples)
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<polyline points="{ready}" fill="none" stroke="#d62728" stroke-width="1.5"/>',
        f'<polyline points="{replicas}" fill="none" stroke="#1f77b4" stroke-width="2"/>',
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - 50}" y2="{h - bottom}" stroke="black"/>',
        f'<text x="{left}" y="14" fill="#1f77b4">replicas (consumers), 0..{maximum}</text>',
        f'<text x="{w - 250}" y="14" fill="#d62728">ready jobs, 0..{top_ready}</text>',
        f'<text x="{left}" y="{h - 8}">0 s</text><text x="{w - 90}" y="{h - 8}">{span:.0f} s</text>',
        "</svg>",
    ])  # fmt: skip


def idle(sampler: Sampler, minimum: int) -> None:
    sampler.until(lambda ready, consumers: ready == 0 and consumers == minimum, 300, "back to the minimum")


def measure() -> dict:
    fn = stack.function(FUNCTION)
    scale = fn["autoscale"]
    minimum, maximum, target = scale["min"], scale["max"], scale["target_backlog_per_replica"]
    capacity_per_replica = 1000 / JOB["ms"]
    sampler = Sampler()
    accepted: set[str] = set()
    try:
        idle(sampler, minimum)
        first, walls = [], []
        n_trial = 3 * target * minimum  # three times the threshold of the minimum
        for _ in range(TRIALS):
            idle(sampler, minimum)
            walls.append(time.time())
            t0 = sampler.now()
            load = stack.post_jobs(n_trial, concurrency=n_trial, function=FUNCTION, payload=JOB)
            accepted |= set(load.accepted)
            first.append(sampler.until(lambda _r, c: c > minimum, 30, "a consumer more") - t0)
        path = start_path(walls)
        idle(sampler, minimum)
        start = len(sampler.samples)
        t0 = sampler.now()
        load = stack.post_jobs(60, concurrency=32, function=FUNCTION, payload=JOB)
        accepted |= set(load.accepted)
        to_max = sampler.until(lambda _r, c: c == maximum, 30, "max consumers") - t0
        idle(sampler, minimum)
        burst = [(t - t0, r, c) for t, r, c in sampler.samples[start:]]
        stack.wait_for(lambda: accepted <= done_jobs(), 120, "every burst job done", 1)
        lost = len(accepted - done_jobs())
        # steady: half of max's capacity
        rate = maximum * capacity_per_replica / 2
        before = len(scale_events())
        steady = stack.post_jobs(int(rate * STEADY_S), rate=rate, concurrency=16, function=FUNCTION, payload=JOB)
        events = scale_events()[before:]
        changes, fast = flaps(events, scale["scale_in_after_s"])
        stack.wait_for(lambda: set(steady.accepted) <= done_jobs(), 120, "every steady job done", 1)
    finally:
        sampler.close()
    SVG.write_text(plot(burst, maximum))
    first.sort()
    return {
        "autoscale": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "function": FUNCTION,
            "min": minimum,
            "max": maximum,
            "target_backlog_per_replica": target,
            "scale_in_after_s": scale["scale_in_after_s"],
            "poll_s": 0.25,
            "job_ms": JOB["ms"],
            "first_consumer_trials_s": [round(v, 2) for v in first],
            "start_path": path,
            "burst_jobs": 60,
            "steady_rate": rate,
            "steady_s": STEADY_S,
            "steady_events": [(e["from"], e["to"]) for e in events],
            "steady_lost": len(set(steady.accepted) - done_jobs()),
        },
        "autoscale_first_consumer_s": round(first[min(len(first) - 1, math.ceil(0.95 * len(first)) - 1)], 2),
        "autoscale_to_max_s": round(to_max, 2),
        "autoscale_lost": lost,
        "autoscale_flaps": fast,
        "autoscale_direction_changes": changes,
    }


def main() -> int:
    out = stack.ROOT / "bench" / "results.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    figures = measure()
    results.update(figures)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "autoscale"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
