"""The safe-join decision (filter rabbitmq_join_plan): never reset a node with data or in a cluster."""

from __future__ import annotations

import json

import pytest
from conftest import load_plugin

plan = load_plugin("filter", "rabbitmq_cluster").rabbitmq_join_plan
nodenames = load_plugin("filter", "rabbitmq_cluster").rabbitmq_nodenames

ME, B, C = "rabbit@mq-1", "rabbit@mq-2", "rabbit@mq-3"


def status(members: list[str], running: list[str] | None = None) -> dict:
    return {"disk_nodes": members, "running_nodes": members if running is None else running}


def probe(node: str, members: list[str], running: list[str] | None = None, rc: int = 0) -> dict:
    return {"item": node, "rc": rc, "stdout": json.dumps(status(members, running)) if rc == 0 else ""}


def test_a_member_of_a_cluster_is_never_reset_even_with_every_peer_down():
    got = plan(status([ME, B, C], [ME]), [probe(B, [], rc=69), probe(C, [], rc=69)], ME, 5, True)
    assert got["action"] == "none" and got["clustered"]


def test_a_member_with_running_peers_does_nothing():
    got = plan(status([ME, B, C]), [], ME)
    assert got["action"] == "none"


def test_a_standalone_node_without_running_peers_is_the_seed():
    got = plan(status([ME]), [probe(B, [], rc=69), probe(C, [], rc=2)], ME)
    assert got["action"] == "none" and not got["clustered"] and "the others join" in got["reason"]
    assert got["peer"] == ""


def test_a_standalone_node_beside_a_running_peer_counts_its_queues_first():
    got = plan(status([ME]), [probe(B, [], rc=69), probe(C, [B, C])], ME)
    assert got["action"] == "count" and got["peer"] == C


def test_a_new_node_joins_any_running_peer():
    got = plan(status([ME]), [probe(B, [], rc=69), probe(C, [B, C], [C])], ME, 0)
    assert got == got | {"action": "join", "peer": C, "forget": False}


def test_a_node_rebuilt_from_an_empty_volume_is_forgotten_by_the_peer_then_joins():
    got = plan(status([ME]), [probe(B, [ME, B, C], [B, C])], ME, 0)
    assert got == got | {"action": "join", "peer": B, "forget": True}


def test_a_standalone_node_with_queues_is_refused_with_the_way_out():
    got = plan(status([ME]), [probe(B, [ME, B, C], [B, C])], ME, 3)
    assert got["action"] == "refuse"
    assert "holds 3 queue(s)" in got["reason"] and "rabbitmq_cluster_force_reset" in got["reason"]


def test_forcing_resets_a_standalone_node_with_queues():
    got = plan(status([ME]), [probe(B, [B, C])], ME, 3, True)
    assert got["action"] == "join" and "forced" in got["reason"]


@pytest.mark.parametrize("stdout", ["", "not json", json.dumps({"running_nodes": []})])
def test_a_peer_that_answers_but_does_not_run_is_not_joined(stdout):
    got = plan(status([ME]), [{"item": B, "rc": 0, "stdout": stdout}], ME, 0)
    assert got["action"] == "none"


def test_nodenames_from_facts_or_the_inventory_name():
    hostvars = {"mq-1.example.net": {"ansible_facts": {"hostname": "mq-1"}}, "mq-2.example.net": {}}
    assert nodenames(["mq-1.example.net", "mq-2.example.net"], hostvars) == [ME, B]
