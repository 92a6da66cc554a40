"""The monitoring role's filters and the scrape targets from the inventory (role hurtig), and the relabelling that
gives every queue the rabbitmq role creates its function and kind (checked against the
rabbitmq role's own topology filter, so that a renamed queue cannot drift unseen)."""

from __future__ import annotations

import re

from conftest import DEAD, JOBS, RETRY, load_plugin

monitoring = load_plugin("filter", "monitoring")
net = load_plugin("filter", "hurtig_net")
topology = load_plugin("filter", "rabbitmq_topology")
functions = load_plugin("filter", "hurtig_functions")

FUNCTIONS = functions.hurtig_functions(
    [
        {"name": "a", "handler": "m:h"},
        {"name": "ab", "handler": "m:h"},
        {"name": "resize-image", "handler": "m:h", "queue": "img.resize-image"},
    ]
)


def relabel(rules: list[dict], labels: dict[str, str]) -> dict[str, str]:
    """Prometheus' `replace` action: an anchored match of the source label sets the target."""
    out = dict(labels)
    for rule in rules:
        value = ";".join(out.get(name, "") for name in rule["source_labels"])
        match = re.fullmatch(rule["regex"], value)
        if match:
            out[rule["target_label"]] = match.expand(re.sub(r"\$(\d)", r"\\\1", rule["replacement"]))
    return out


def test_every_queue_of_the_topology_gets_its_function_and_kind() -> None:
    rules = monitoring.monitoring_queue_relabels(FUNCTIONS)
    queues = [q["name"] for q in topology.rabbitmq_topology(FUNCTIONS, JOBS, RETRY, DEAD)["queues"]]
    labelled = {q: relabel(rules, {"queue": q}) for q in queues}
    assert {q: (v["function"], v["queue_kind"]) for q, v in labelled.items()} == {
        "jobs.a": ("a", "main"),
        "jobs.a.retry": ("a", "retry"),
        "jobs.a.dead": ("a", "dead"),
        "jobs.ab": ("ab", "main"),
        "jobs.ab.retry": ("ab", "retry"),
        "jobs.ab.dead": ("ab", "dead"),
        "img.resize-image": ("resize-image", "main"),
        "img.resize-image.retry": ("resize-image", "retry"),
        "img.resize-image.dead": ("resize-image", "dead"),
    }


def test_a_queue_of_no_function_gets_no_labels() -> None:
    rules = monitoring.monitoring_queue_relabels(FUNCTIONS)
    for queue in ("jobsXa", "jobs.a.other", "other.dead", "jobs.a.dead.dead"):
        assert relabel(rules, {"queue": queue}) == {"queue": queue}


def test_targets_are_private_addresses_labelled_with_the_inventory_name() -> None:
    hostvars = {
        "mq-1": {"private_address": "10.0.0.21", "ansible_host": "203.0.113.1"},
        "mq-2": {"ansible_host": "10.0.0.22"},
        "mq-3": {"private_address": "fd00::23"},
    }
    assert net.hurtig_scrape_targets(["mq-1", "mq-2", "mq-3"], hostvars, 15692) == [
        {"targets": ["10.0.0.21:15692"], "labels": {"node": "mq-1"}},
        {"targets": ["10.0.0.22:15692"], "labels": {"node": "mq-2"}},
        {"targets": ["[fd00::23]:15692"], "labels": {"node": "mq-3"}},
    ]


def test_a_probe_target_is_an_url_of_the_private_address() -> None:
    hostvars = {"in-1": {"private_address": "10.0.0.10", "ansible_host": "203.0.113.10"}, "in-2": {}}
    assert net.hurtig_scrape_targets(["in-1", "in-2"], hostvars, 443, "https://", "/healthz") == [
        {"targets": ["https://10.0.0.10:443/healthz"], "labels": {"node": "in-1"}},
        {"targets": ["https://in-2:443/healthz"], "labels": {"node": "in-2"}},
    ]


def test_worker_hosts_are_those_of_the_functions_groups_each_once() -> None:
    fns = functions.hurtig_functions(
        [
            {"name": "a", "handler": "m:h"},
            {"name": "b", "handler": "m:h", "group": "gpu"},
            {"name": "c", "handler": "m:h"},
        ]
    )
    groups = {"workers": ["w-1", "w-2"], "gpu": ["g-1", "w-2"], "api": ["a-1"]}
    assert monitoring.monitoring_function_hosts(fns, groups) == ["w-1", "w-2", "g-1"]
    assert monitoring.monitoring_function_hosts(fns, {"api": ["a-1"]}) == []
