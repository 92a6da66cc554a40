"""The classic work-queue task: sleep one second per dot in the message ("Hello..." = 3 s)."""

from __future__ import annotations

import time
from typing import Any


def handle(payload: Any, job: Any) -> dict[str, Any]:
    task = payload if isinstance(payload, str) else str((payload or {}).get("task", ""))
    seconds = task.count(".")
    time.sleep(seconds)
    return {"job_id": job.job_id, "slept_s": seconds}
