"""The worker role's containers per node, autoscaled ones included (filter worker_containers)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from conftest import role_plugin

from hurtig.autoscale import share

plugin = role_plugin("worker", "filter_plugins", "worker_containers")
check = role_plugin("hurtig", "filter_plugins", "hurtig_functions").hurtig_functions
GROUPS = {"workers": ["w1", "w2", "w3"]}


def test_fixed_replicas_all_started():
    fns = check([{"name": "a", "handler": "m:f", "replicas": 2}])
    got = plugin.worker_containers(fns, GROUPS, "w2", "hurtig")
    assert [(c["name"], c["state"]) for c in got] == [("hurtig-a-1", "started"), ("hurtig-a-2", "started")]
    assert plugin.worker_autoscale_config(got, GROUPS, "w2", 10) == []


def test_autoscaled_share_of_max_created_share_of_min_started():
    fns = check([{"name": "b", "handler": "m:f", "timeout": 30, "prefetch": 2,
                  "autoscale": {"min": 2, "max": 8, "scale_in_after_s": 20}}])  # fmt: skip
    per_node = {h: plugin.worker_containers(fns, GROUPS, h, "hurtig") for h in GROUPS["workers"]}
    assert [len(v) for v in per_node.values()] == [3, 3, 2]  # 8 over three nodes
    assert [[c["state"] for c in v].count("started") for v in per_node.values()] == [1, 1, 0]  # min 2
    [cfg] = plugin.worker_autoscale_config(per_node["w3"], GROUPS, "w3", 10)
    assert cfg == {"name": "b", "queue": "jobs.b", "prefetch": 2, "min": 2, "max": 8, "target_backlog_per_replica": 5,
                   "scale_in_after_s": 20, "stop_timeout_s": 40, "node_index": 2, "node_count": 3,
                   "containers": ["hurtig-b-1", "hurtig-b-2"]}  # fmt: skip


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_the_role_creates_what_the_controller_will_ask_for(count):
    for total in range(0, 25):
        assert [plugin._share(total, k, count) for k in range(count)] == [share(total, k, count) for k in range(count)]


def test_a_host_outside_the_group_is_an_error():
    fns = check([{"name": "b", "handler": "m:f", "autoscale": {"max": 2}}])
    with pytest.raises(AnsibleFilterError, match="w9 is not in the group workers"):
        plugin.worker_containers(fns, GROUPS, "w9", "hurtig")
