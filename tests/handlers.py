"""Handlers the worker tests load by name ('handlers:<function>'), in-process or in a
subprocess. They write what they saw to the file named by HURTIG_TEST_RECORD."""

from __future__ import annotations

import os
import time
from typing import Any


def _record(line: str) -> None:
    path = os.environ.get("HURTIG_TEST_RECORD")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def record(payload: Any, job: Any) -> None:
    _record(f"done {job.job_id}")


def slow(payload: Any, job: Any) -> None:
    _record(f"start {job.job_id}")
    time.sleep(float(payload.get("seconds", 2)))
    _record(f"done {job.job_id}")


def fail(payload: Any, job: Any) -> None:
    _record(f"attempt {job.job_id} {job.attempt}")
    raise RuntimeError("handler says no")
