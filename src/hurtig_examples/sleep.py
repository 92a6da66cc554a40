"""The classic work-queue task: sleep one second per dot in the message ("Hello..." = 3 s).

A payload {"ms": 20} sleeps 20 milliseconds instead: a CPU-light job of known length for
the drain benchmark.
"""

from __future__ import annotations

import time
from typing import Any


def handle(payload: Any, job: Any) -> dict[str, Any]:
    if isinstance(payload, dict) and isinstance(payload.get("ms"), int | float):
        seconds: float = max(0.0, min(float(payload["ms"]), 60_000.0)) / 1000
    else:
        task = payload if isinstance(payload, str) else str((payload or {}).get("task", ""))
        seconds = task.count(".")
    time.sleep(seconds)
    return {"job_id": job.job_id, "slept_s": seconds}
