"""What a function's handler is: `module:function`, called as `handler(payload, job)` in a
worker's thread pool with the job's JSON payload and its JobContext. Its return value is
ignored; an exception fails the job (retried up to max_retries, then dead-lettered), and
hurtig.jobs.Rejected dead-letters it at once. A client's package codes against this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[[Any, "JobContext"], Any]


@dataclass(frozen=True)
class JobContext:
    """What a handler knows about the job besides its payload (delivery is at-least-once:
    use job_id or idempotency_key to make side effects idempotent)."""

    job_id: str
    function: str
    attempt: int
    submitted_at: str
    idempotency_key: str | None


def load_handler(spec: str) -> Handler:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SystemExit(f"hurtig-worker: handler must be 'module:function', got {spec!r}")
    handler = getattr(importlib.import_module(module_name), attr)
    if not callable(handler):
        raise SystemExit(f"hurtig-worker: {spec} is not callable")
    return handler
