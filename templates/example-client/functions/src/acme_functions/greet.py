"""greet: write a greeting for a name to $HURTIG_OUTPUT_DIR/greet-<job id>.

A job without a name can never succeed: it is rejected (dead-lettered at once, no retry).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

try:
    from hurtig.jobs import Rejected  # in the runtime image: the worker dead-letters it at once
except ImportError:  # the client's own tests, without the platform installed

    class Rejected(Exception):  # type: ignore[no-redef]
        """Stands in for hurtig.jobs.Rejected."""


def greeting(payload: Any) -> str:
    name = payload.get("name") if isinstance(payload, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise Rejected("a greeting needs a name (a non-empty string)")
    return f"Hello, {name.strip()}!\n"


def handle(payload: Any, job: Any) -> None:
    text = greeting(payload)
    out = Path(os.environ.get("HURTIG_OUTPUT_DIR", "/data/out"))
    target = out / f"greet-{job.job_id}"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, target)  # whole or absent, also when the job is redelivered
