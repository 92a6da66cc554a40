"""Resize an image with Pillow.

Payload: {"image_b64": "<PNG/JPEG bytes, base64>", "width": 320, "height": 240}
or {"source": "/data/in/cat.jpg", ...}. The result is written as PNG to
$HURTIG_OUTPUT_DIR/<job_id>.png (written to a temporary name, then renamed: a redelivered
job overwrites the same file, so the handler is idempotent).

A `source` is read only when, with every symlink resolved, it lies under one of the
directories of $HURTIG_INPUT_DIRS (colon-separated; default /data/in). Any other path is
rejected (hurtig.jobs.Rejected): the job goes to the dead-letter queue at once, with the
reason. The output path comes from the job id, never from the payload.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any

from PIL import Image

from hurtig.jobs import Rejected


def allowed_source(name: str) -> Path:
    """The source file, if it lies under an allowed input directory; else Rejected."""
    roots = [Path(d).resolve() for d in os.environ.get("HURTIG_INPUT_DIRS", "/data/in").split(":") if d]
    path = Path(name).resolve()  # symlinks and '..' resolved: no way out of a root
    if not any(path.is_relative_to(root) for root in roots):
        raise Rejected(f"source {name!r} is outside the allowed input directories")
    return path


def handle(payload: dict[str, Any], job: Any) -> dict[str, Any]:
    width, height = int(payload["width"]), int(payload["height"])
    if not (0 < width <= 10_000 and 0 < height <= 10_000):
        raise ValueError("width and height must be between 1 and 10000")
    if "image_b64" in payload:
        source: Any = io.BytesIO(base64.b64decode(payload["image_b64"], validate=True))
    else:
        source = allowed_source(str(payload["source"]))
    with Image.open(source) as img:
        img.thumbnail((width, height))
        out_dir = Path(os.environ.get("HURTIG_OUTPUT_DIR", "/data/out"))
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{job.job_id}.png"
        tmp = target.with_suffix(".tmp")
        img.save(tmp, format="PNG")
        tmp.replace(target)
        return {"job_id": job.job_id, "output": str(target), "size": list(img.size)}
