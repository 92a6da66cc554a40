"""Where thousands of keep-alive clients cost: h2load on the API's `/healthz` through the
ingress (`/bench/api-healthz`) at several client counts, each client sending on its answer,
then one rate from 64 and from 4,096 clients each paced by h2load (`--rps`), so that no
request waits in a queue. For each run: the rate, h2load's mean request time, each process
group's CPU per request, and each node's TCP segments per request (`nstat` in the ingress
and API nodes' network namespaces): with 64 clients an acknowledgement rides on the answer
or on the next request; once a request waits longer than the 40-ms delayed-ACK timeout, or
a connection idles past the minimum RTO, it is a segment of its own. Against a running
stack (`bench/stack.py up`), one JSON line a run; docs/benchmarks.md, "Where the 4,096
clients' cost comes from", has the figures of 2026-12-07.

    python bench/acks.py [--clients 64,1024,2048,3072,4096,64] [--paced 8192]
"""

from __future__ import annotations

import argparse
import json
import subprocess

import loadgen
import stack

SEGMENTS = ("TcpInSegs", "TcpOutSegs", "TcpExtDelayedACKs", "TcpExtTCPHPHits")


def nstat_counts(out: str) -> dict[str, int]:
    """`nstat -az`'s counters by name (its first line is a comment; each other line is a
    name, a count, and a rate)."""
    fields = (line.split() for line in out.splitlines()[1:])
    return {f[0]: int(f[1]) for f in fields if len(f) >= 2 and f[1].isdigit()}


def counters(node: str) -> dict[str, int]:
    """A node's TCP counters since its network namespace was made."""
    out = subprocess.run([*stack.netns(node), "nstat", "-az"], capture_output=True, text=True, check=True).stdout
    return nstat_counts(out)


def run(clients: int, rps: int = 0) -> dict:
    """One h2load run with every node's segments per request."""
    nodes = [stack.INGRESS_NODE, *stack.API_NODES]
    before = {n: counters(n) for n in nodes}
    result = loadgen.h2load("/bench/api-healthz", connections=clients, rps=rps)
    after = {n: counters(n) for n in nodes}
    count = max(result["requests"], 1)
    per = {n: {k: round((after[n].get(k, 0) - before[n].get(k, 0)) / count, 2) for k in SEGMENTS} for n in nodes}
    keep = ("connections", "rps", "mean_ms", "errors", "cpu_us_per_request", "machine")
    return {"rps_each": rps, **{k: result[k] for k in keep}, "segments_per_request": per}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="64,1024,2048,3072,4096,64", help="closed-loop client counts, in order")
    parser.add_argument("--paced", type=int, default=8192, help="total rate of the paced pair (0: none)")
    args = parser.parse_args()
    for clients in (int(c) for c in args.clients.split(",") if c):
        print(json.dumps(run(clients)), flush=True)
    if args.paced:
        for clients in (64, 4096):
            print(json.dumps(run(clients, rps=args.paced // clients)), flush=True)


if __name__ == "__main__":
    main()
