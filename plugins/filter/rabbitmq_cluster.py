"""Safe cluster membership: decide whether a broker joins a peer, and never reset one that
holds data or already belongs to a cluster.

rabbitmq_join_plan(own, probes, nodename, queues, force) -> {action, reason, peer, forget, clustered}
  own       this node's `rabbitmqctl cluster_status --formatter json`, parsed
  probes    the peers' cluster_status as seen from this node: a list of
            {nodename, rc, stdout} (rc != 0: not reachable or not running); a registered
            loop result (nodename in `item`) will do
  nodename  this node's name (rabbit@host)
  queues    how many queues this node holds (any vhost); -1 when not counted
  force     rabbitmq_cluster_force_reset: a standalone node that holds data may be reset

action is one of
  none    it is a member of a cluster (of which some peers may be down), or no peer runs
          (this node is the seed the others join)
  count   a standalone node beside a running peer: count its queues before deciding
  join    a standalone node without data (or forced): stop_app, reset, join `peer`;
          `forget` when the peer still lists this node (it was rebuilt from an empty volume)
  refuse  a standalone node with data beside a running cluster: the play stops
"""

from __future__ import annotations

import json
from typing import Any


def _members(status: dict[str, Any]) -> list[str]:
    return sorted(set(status.get("disk_nodes", [])) | set(status.get("ram_nodes", [])))


def _running_peer(probes: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    for probe in probes:
        name = probe.get("nodename") or probe.get("item")  # a registered loop result has `item`
        if probe.get("rc") != 0 or not name:
            continue
        try:
            status = json.loads(probe.get("stdout") or "{}")
        except ValueError:
            continue
        if name in status.get("running_nodes", []):
            return name, status
    return None


def rabbitmq_nodenames(hosts: list[str], hostvars: Any) -> list[str]:
    """rabbit@<short hostname> per inventory host: its facts' hostname when gathered (a host
    of a later serial batch has none yet), else the inventory name's first label."""
    out = []
    for host in hosts:
        facts = hostvars[host].get("ansible_facts") or {}
        out.append("rabbit@" + str(facts.get("hostname") or host.split(".")[0]))
    return out


def rabbitmq_join_plan(
    own: dict[str, Any], probes: list[dict[str, Any]], nodename: str, queues: int = -1, force: bool = False
) -> dict[str, Any]:
    members = _members(own)
    plan: dict[str, Any] = {"action": "none", "peer": "", "forget": False, "clustered": len(members) > 1}
    if len(members) > 1:
        return plan | {"reason": f"{nodename} is a member of a cluster of {len(members)}: never reset"}
    found = _running_peer(probes)
    if found is None:
        return plan | {"reason": f"no peer runs: {nodename} is the node the others join"}
    peer, status = found
    plan |= {"peer": peer, "forget": nodename in _members(status)}
    if queues < 0:
        return plan | {"action": "count", "reason": f"{nodename} is standalone beside {peer}: count its queues"}
    if queues > 0 and not force:
        return plan | {
            "action": "refuse",
            "reason": (
                f"{nodename} is standalone and holds {queues} queue(s), beside the running cluster of {peer}."
                " Joining would reset it and drop them. Move or drain its data first, or set"
                " rabbitmq_cluster_force_reset=true for this host to reset it."
            ),
        }
    what = "holds no queue" if queues == 0 else f"holds {queues} queue(s), reset as forced"
    return plan | {"action": "join", "reason": f"{nodename} {what}: it joins {peer}"}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rabbitmq_join_plan": rabbitmq_join_plan, "rabbitmq_nodenames": rabbitmq_nodenames}
