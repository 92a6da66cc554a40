"""Where an API process spends its CPU on the job path: a py-spy profile by category.

    py-spy record --pid <an API serving process> --duration 12 --rate 250 --format raw -o P.txt
    (while wrk posts jobs: bench/run.py's jobs case)
    python bench/profile.py P.txt [API µs per job]
    python bench/profile.py --compare JOB.txt JOB_REQUESTS HEALTHZ.txt HEALTHZ_REQUESTS

The second form sets two profiles of one process side by side (a job against a `/healthz`,
or 4,096 clients against 64): each function's samples, its callees included, per 1,000
requests of its run, largest difference first. Neither needs categories, but both need a
process outside a container, where py-spy can tell an idle event loop from a busy one.

py-spy's raw format is one collapsed stack per line with its sample count. A sample goes to
the first category whose marker occurs in its stack; `event loop, other` is what is left:
mostly uvloop's own C code (socket reads and writes, TLS, callbacks), which py-spy does not
unwind (its --native mode fails on these hosts: UNW_EBADREG). The profile tables of docs/benchmarks.md
come from bench/profiles/api-jobs-{before,after}.txt.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Iterator
from pathlib import Path

CATEGORIES = [
    # aiormq's (before) and hurtig.publisher's (after) frames
    ("AMQP write (TLS record + send)", ["Connection.__writer", "Connection._flush"]),
    ("AMQP confirms read", ["Connection.__reader", "FrameReceiver", "Connection.data_received"]),
    (
        "AMQP publish (frames, lock, confirm future)",
        ["Channel.basic_publish", "Publisher.publish", "Connection.publish"],
    ),
    ("HTTP response (headers, write)", ["finish_response", "json_response", "StreamResponse", "Response.__init__"]),
    ("API key check", ["_admit", "digest", "Keys.client"]),
    (
        "job: JSON, validation, ids, metrics",
        [
            "loads (json",
            "hurtig/jobs.py",
            "uuid",
            "isoformat",
            "now (",
            "observe",
            "submit_job (hurtig/api.py",
        ],
    ),
    ("HTTP request (parse, read body, routing)", ["data_received", "RequestHandler.start", "_handle_request"]),
]
OTHER = "event loop, other"


def samples(path: Path) -> Iterator[tuple[str, int]]:
    """Each collapsed stack of a raw py-spy profile with its sample count."""
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack:
            yield stack, int(n)


def categorise(path: Path) -> dict[str, int]:
    """Samples per category, largest first."""
    counts: collections.Counter[str] = collections.Counter()
    for stack, n in samples(path):
        name = next((c for c, markers in CATEGORIES if any(m in stack for m in markers)), OTHER)
        counts[name] += n
    return dict(counts.most_common())


def inclusive(path: Path, requests: int) -> dict[str, float]:
    """Samples per 1,000 requests in which each function is on the stack (once per sample),
    and `(total)` for all of them."""
    counts: collections.Counter[str] = collections.Counter()
    for stack, n in samples(path):
        counts["(total)"] += n
        for name in {frame.split(" (")[0] for frame in stack.split(";")}:
            counts[name] += n
    return {name: n * 1000 / max(requests, 1) for name, n in counts.items()}


def compare(a: dict[str, float], b: dict[str, float], rows: int = 25) -> list[str]:
    """A markdown table of two `inclusive` profiles, the largest difference first."""
    # the frames on every stack of both (the process's main, the event loop's run) say nothing
    everywhere = {k for k in a if k != "(total)" and a[k] == a["(total)"] and b.get(k) == b.get("(total)")}
    names = sorted((set(a) | set(b)) - everywhere, key=lambda k: (k != "(total)", -(a.get(k, 0) - b.get(k, 0)), k))
    lines = ["| function | first | second | difference |", "|---|---|---|---|"]
    for name in names[: rows + 1]:
        x, y = a.get(name, 0.0), b.get(name, 0.0)
        lines.append(f"| {name} | {x:.2f} | {y:.2f} | {x - y:+.2f} |")
    return lines


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--compare":
        first = inclusive(Path(argv[1]), int(argv[2]))
        second = inclusive(Path(argv[3]), int(argv[4]))
        print("\n".join(compare(first, second)))
        return 0
    counts = categorise(Path(argv[0]))
    us = float(argv[1]) if len(argv) > 1 else 0.0
    total = sum(counts.values())
    print("| where | share | µs per job |\n|---|---|---|")
    for name, n in counts.items():
        print(f"| {name} | {100 * n / total:.0f} % | {us * n / total:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
