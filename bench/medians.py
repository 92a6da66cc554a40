"""Several runs of one case reduced to a result: medians with their ranges (bench/run.py's
repeated cases, bench/e2e.py's half-load runs)."""

from __future__ import annotations

import statistics


def combine(runs: list[dict]) -> dict:
    """Several runs of the same cases as one result: every number that all runs have is the
    median of the runs (odd counts: one of the measured values), and `ranges` holds its
    [min, max]; the per-case details (dicts, lists) are the last run's, `runs` the count."""
    out = dict(runs[-1])
    if len(runs) == 1:
        return out
    numbers = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    ranges = {}
    for key in numbers:
        values = [run[key] for run in runs if key in run]
        if len(values) == len(runs):
            out[key] = statistics.median_low(values) if isinstance(values[0], int) else statistics.median(values)
            ranges[key] = [min(values), max(values)]
    return out | {"runs": len(runs), "ranges": ranges}


def median_into(r: dict, runs: list[dict], *keys: str) -> None:
    """Each of `keys`, measured in every one of `runs`, into `r`: its median, and its
    [min, max] into r["ranges"] ([v, v] for a single run)."""
    medians = combine(runs)
    for key in keys:
        r[key] = medians[key]
        r.setdefault("ranges", {})[key] = medians.get("ranges", {}).get(key, [medians[key]] * 2)
