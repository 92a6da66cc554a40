"""Record every processed job id durably: $HURTIG_OUTPUT_DIR/<job_id> (fsynced).

Used by the full-stack tests, the benchmarks and the fault tests to prove that no accepted
job is lost. Idempotent: a redelivered job rewrites the same file, and appends one line to
processed.log, so duplicates can be counted too:

    <job_id> <time the handler started, Unix seconds> <attempt>

The start time is what the end-to-end latency benchmark measures to (the containers share
the host's clock).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def handle(payload: Any, job: Any) -> None:
    started = time.time()
    out = Path(os.environ.get("HURTIG_OUTPUT_DIR", "/data/out"))
    target = out / job.job_id
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, f"{job.attempt}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(out / "processed.log", "a") as log:
        log.write(f"{job.job_id} {started:.6f} {job.attempt}\n")
        log.flush()
        os.fsync(log.fileno())
