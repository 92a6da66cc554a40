"""Where an API process spends its CPU on the job path: a py-spy profile by category.

    py-spy record --pid <an API serving process> --duration 12 --rate 250 --format raw -o P.txt
    (while wrk posts jobs: bench/run.py's jobs case)
    python bench/profile.py P.txt [API µs per job]

py-spy's raw format is one collapsed stack per line with its sample count. A sample goes to
the first category whose marker occurs in its stack; `event loop, other` is what is left:
mostly uvloop's own C code (socket reads and writes, TLS, callbacks), which py-spy does not
unwind (its --native mode fails on these hosts: UNW_EBADREG). The profile tables of docs/benchmarks.md
come from bench/profiles/api-jobs-{before,after}.txt.
"""

from __future__ import annotations

import collections
import sys
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


def categorise(path: Path) -> dict[str, int]:
    """Samples per category, largest first."""
    counts: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        name = next((c for c, markers in CATEGORIES if any(m in stack for m in markers)), OTHER)
        counts[name] += int(n)
    return dict(counts.most_common())


def main(argv: list[str]) -> int:
    counts = categorise(Path(argv[0]))
    us = float(argv[1]) if len(argv) > 1 else 0.0
    total = sum(counts.values())
    print("| where | share | µs per job |\n|---|---|---|")
    for name, n in counts.items():
        print(f"| {name} | {100 * n / total:.0f} % | {us * n / total:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
