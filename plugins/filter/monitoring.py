"""Filters of the monitoring role: the labels that tie a broker queue to its function (the
scrape targets come from the hurtig role's hurtig_scrape_targets).

- monitoring_queue_relabels(functions): metric_relabel_configs that give each queue of a
  function (its queue, `<queue>.retry`, `<queue>.dead`: the rabbitmq role's topology) the
  labels `function` and `queue_kind` (main, retry or dead). The alert rules select on them.
- monitoring_function_hosts(functions, groups): the hosts that run workers (the inventory
  groups the functions name), each once, in inventory order; a group missing from the
  inventory adds none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError


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


def monitoring_function_hosts(functions: list[Mapping[str, Any]], groups: Mapping[str, list[str]]) -> list[str]:
    hosts: list[str] = []
    for fn in functions:
        if "group" not in fn:
            raise AnsibleFilterError(f"a function without group: {fn!r} (read it through hurtig_functions)")
        hosts += [h for h in groups.get(str(fn["group"]), []) if h not in hosts]
    return hosts


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "monitoring_queue_relabels": monitoring_queue_relabels,
            "monitoring_function_hosts": monitoring_function_hosts,
        }
