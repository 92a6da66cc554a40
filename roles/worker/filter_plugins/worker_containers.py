"""The worker containers of one node, and the autoscaler's view of them.

worker_containers(functions, groups, host, prefix): one entry per container the node keeps,
{name, function, index, state}: `replicas` of a function without `autoscale`, all started;
of an autoscaled function, the node's share of `max`, created in advance so that starting
one is all a scale-out takes, the share of `min` of them started (the controller starts and
stops the others). Node k of the n hosts of the function's group (inventory order) has
total // n, plus one if k < total % n: the rule of hurtig.autoscale.share, which the
controller applies to its totals (tests/test_worker_containers.py checks both agree).

worker_autoscale_config(containers, stop_grace): what the controller (hurtig-autoscaler,
HURTIG_AUTOSCALE_FUNCTIONS) needs of each autoscaled function of the node.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError


def _share(total: int, index: int, count: int) -> int:
    return total // count + (1 if index < total % count else 0)


def _place(fn: dict[str, Any], groups: dict[str, list[str]], host: str) -> tuple[int, int]:
    hosts = list(groups.get(fn["group"], []))
    if host not in hosts:
        raise AnsibleFilterError(
            f"worker_containers: {host} is not in the group {fn['group']} of function {fn['name']}"
        )
    return hosts.index(host), len(hosts)


def worker_containers(functions: list[dict[str, Any]], groups: dict[str, list[str]], host: str,
                      prefix: str) -> list[dict[str, Any]]:  # fmt: skip
    out = []
    for fn in functions:
        scale = fn.get("autoscale")
        if scale:
            k, n = _place(fn, groups, host)
            count, started = _share(scale["max"], k, n), _share(scale["min"], k, n)
        else:
            count = started = fn["replicas"]
        for i in range(1, count + 1):
            out.append({"name": f"{prefix}-{fn['name']}-{i}", "function": fn, "index": i,
                        "state": "started" if i <= started else "present"})  # fmt: skip
    return out


def worker_autoscale_config(containers: list[dict[str, Any]], groups: dict[str, list[str]], host: str,
                            stop_grace: int) -> list[dict[str, Any]]:  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    for c in containers:
        fn = c["function"]
        if not fn.get("autoscale"):
            continue
        if fn["name"] not in out:
            k, n = _place(fn, groups, host)
            out[fn["name"]] = {"name": fn["name"], "queue": fn["queue"], "prefetch": fn["prefetch"],
                               **{key: fn["autoscale"][key] for key in
                                  ("min", "max", "target_backlog_per_replica", "scale_in_after_s")},
                               "stop_timeout_s": fn["timeout"] + int(stop_grace), "node_index": k, "node_count": n,
                               "containers": []}  # fmt: skip
        out[fn["name"]]["containers"].append(c["name"])
    return list(out.values())


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"worker_containers": worker_containers, "worker_autoscale_config": worker_autoscale_config}
