"""The jobs topology as data, and its comparison with what the broker has.

rabbitmq_topology(functions, jobs, retry, dead): per function a durable queue on the jobs
exchange, a retry queue whose TTL dead-letters back to the jobs exchange, and a
dead-letter ("parking") queue, and a policy that bounds the queue (the function's max_ready
and max_ready_bytes, overflow reject-publish: back-pressure per function); as a definitions
document {exchanges, queues, bindings, policies}.
rabbitmq_topology_mismatches(topology, definitions): queue arguments and exchange types
cannot change in place, so every argument of every existing queue and the type of every
existing exchange are compared; one message per difference.
rabbitmq_topology_missing(topology, definitions): what the broker lacks, as a definitions
document to import (empty lists when nothing is missing). A policy is mutable: one that
differs is imported again, which replaces it.
"""

from __future__ import annotations

import json
import re
from typing import Any

POLICY_KEYS = ("pattern", "apply-to", "definition", "priority")


def _queue(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "durable": True, "auto_delete": False, "arguments": arguments}


def _binding(exchange: str, queue: str, key: str) -> dict[str, Any]:
    return {"source": exchange, "destination": queue, "destination_type": "queue", "routing_key": key, "arguments": {}}


def _key(b: dict[str, Any]) -> tuple[str, str, str, str]:
    return b["source"], b["destination"], b["destination_type"], b["routing_key"]


def _bounds(name: str, queue: str, f: dict[str, Any]) -> dict[str, Any]:
    """The policy that bounds a function's queue: over it the broker nacks the publish."""
    definition = {"max-length": int(f["max_ready"]), "max-length-bytes": int(f["max_ready_bytes"]),
                  "overflow": "reject-publish"}  # fmt: skip
    pattern = f"^{re.escape(queue)}$"
    return {"name": f"hurtig-bounds-{name}", "pattern": pattern, "apply-to": "queues", "definition": definition,
            "priority": 10}  # fmt: skip


def rabbitmq_topology(functions: list[dict[str, Any]], jobs: str, retry: str, dead: str) -> dict[str, list[Any]]:
    queues, bindings, policies = [], [], []
    for f in functions:
        qtype, name, queue = f["queue_type"], f["name"], f["queue"]
        main = {"x-queue-type": qtype, "x-dead-letter-exchange": dead, "x-dead-letter-routing-key": name}
        retried = {"x-queue-type": qtype, "x-message-ttl": int(f["retry_delay_ms"]),
                   "x-dead-letter-exchange": jobs, "x-dead-letter-routing-key": name}  # fmt: skip
        if qtype == "quorum":
            main |= {"x-delivery-limit": int(f["delivery_limit"]), "x-dead-letter-strategy": "at-least-once",
                     "x-overflow": "reject-publish"}  # fmt: skip
            retried |= {"x-overflow": "reject-publish", "x-dead-letter-strategy": "at-least-once"}
        dead_queue = {"x-queue-type": qtype}
        queues += [_queue(queue, main), _queue(f"{queue}.retry", retried), _queue(f"{queue}.dead", dead_queue)]
        policies.append(_bounds(name, queue, f))
        bindings += [
            _binding(jobs, queue, name),
            _binding(retry, f"{queue}.retry", name),
            _binding(dead, f"{queue}.dead", name),
        ]
    # retry and dead are topic exchanges, so that topic permissions can limit each function's
    # user to its own routing keys there (a name has no '.', '*' or '#': it routes as in direct)
    exchanges = [
        {"name": x, "type": kind, "durable": True, "auto_delete": False, "internal": False, "arguments": {}}
        for x, kind in ((jobs, "direct"), (retry, "topic"), (dead, "topic"))
    ]
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings, "policies": policies}


def rabbitmq_topology_mismatches(topology: dict[str, list[Any]], definitions: dict[str, Any]) -> list[str]:
    have = {q["name"]: q.get("arguments") or {} for q in definitions.get("queues", [])}
    kinds = {x["name"]: x.get("type") for x in definitions.get("exchanges", [])}
    out = [
        f"exchange {x['name']}: type {kinds[x['name']]} on the broker but {x['type']} in this version"
        for x in topology["exchanges"]
        if kinds.get(x["name"], x["type"]) != x["type"]
    ]
    for q in topology["queues"]:
        if q["name"] not in have:
            continue
        existing, wanted = have[q["name"]], q["arguments"]
        for key in sorted(set(existing) | set(wanted)):
            if existing.get(key) != wanted.get(key):
                out.append(
                    f"queue {q['name']}: argument {key} is {json.dumps(existing.get(key))} on the broker"
                    f" but {json.dumps(wanted.get(key))} in the functions list"
                )
    return out


def rabbitmq_topology_missing(topology: dict[str, list[Any]], definitions: dict[str, Any]) -> dict[str, list[Any]]:
    exchanges = {x["name"] for x in definitions.get("exchanges", [])}
    queues = {q["name"] for q in definitions.get("queues", [])}
    bindings = {_key(b) for b in definitions.get("bindings", [])}
    policies = {p["name"]: tuple(p.get(k) for k in POLICY_KEYS) for p in definitions.get("policies", [])}
    return {
        "exchanges": [x for x in topology["exchanges"] if x["name"] not in exchanges],
        "queues": [q for q in topology["queues"] if q["name"] not in queues],
        "bindings": [b for b in topology["bindings"] if _key(b) not in bindings],
        "policies": [p for p in topology["policies"] if policies.get(p["name"]) != tuple(p[k] for k in POLICY_KEYS)],
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "rabbitmq_topology": rabbitmq_topology,
            "rabbitmq_topology_mismatches": rabbitmq_topology_mismatches,
            "rabbitmq_topology_missing": rabbitmq_topology_missing,
        }
