"""Filters of the monitoring role: scrape targets from the inventory, and the labels that
tie a broker queue to its function.

- monitoring_hostport(address, port): `address:port`, IPv6 in brackets.
- monitoring_targets(hosts, hostvars, port): one static_config per host,
  `<private_address>:<port>` labelled `node: <inventory name>`.
- monitoring_queue_relabels(functions): metric_relabel_configs that give each queue of a
  function (its queue, `<queue>.retry`, `<queue>.dead`: the rabbitmq role's topology) the
  labels `function` and `queue_kind` (main, retry or dead). The alert rules select on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError


def monitoring_hostport(address: str, port: int) -> str:
    """`address:port`, an IPv6 address in brackets."""
    address = str(address)
    return f"[{address}]:{int(port)}" if ":" in address else f"{address}:{int(port)}"


def monitoring_targets(hosts: list[str], hostvars: Mapping[str, Any], port: int) -> list[dict[str, Any]]:
    configs = []
    for host in hosts:
        address = hostvars[host].get("private_address") or hostvars[host].get("ansible_host") or host
        configs.append({"targets": [monitoring_hostport(address, port)], "labels": {"node": str(host)}})
    return configs


def _relabel(regex: str, label: str, value: str) -> dict[str, Any]:
    return {"source_labels": ["queue"], "regex": regex, "target_label": label, "replacement": value}


def monitoring_queue_relabels(functions: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for fn in functions:
        if "queue" not in fn or "name" not in fn:
            raise AnsibleFilterError(f"a function without name or queue: {fn!r} (read it through hurtig_functions)")
        queue = re.escape(str(fn["queue"]))
        name = str(fn["name"])
        rules += [
            _relabel(f"{queue}(\\.retry|\\.dead)?", "function", name),
            _relabel(queue, "queue_kind", "main"),
            _relabel(f"{queue}\\.(retry|dead)", "queue_kind", "$1"),
        ]
    return rules


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "monitoring_hostport": monitoring_hostport,
            "monitoring_targets": monitoring_targets,
            "monitoring_queue_relabels": monitoring_queue_relabels,
        }
