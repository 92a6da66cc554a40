"""The faults bench/chaos.py injects into staging's stack under load (the broker leading the
job queue killed, restarted, partitioned or rebuilt; a worker container killed, Docker
restarted, the API restarted, the worker node cut from the brokers, a rolling redeploy,
passwords rotated), and the check that the stack is whole again between them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import stack

_RECORD = stack.function("record")  # as inventories/staging defines it
FUNCTION, QUEUE, REPLICAS, PREFETCH = "record", _RECORD["queue"], _RECORD["replicas"], _RECORD["prefetch"]
RECOVERY_S = 240


def leader() -> str:
    """The broker whose node leads the job queue (its quorum's leader), asked of any running one."""
    for broker in stack.BROKERS:
        out = stack.node(broker, "rabbitmqctl", "-q", "list_queues", "-p", stack.contract()["hurtig_vhost"],
                         "name", "leader", "--formatter", "json", check=False)  # fmt: skip
        try:
            queues = {q["name"]: q["leader"] for q in json.loads(out)}
        except ValueError:
            continue
        return queues[QUEUE].split("@", 1)[1]
    raise RuntimeError("no broker answers")


def kill_broker() -> None:
    # the Erlang VM of the job queue's leader, no shutdown of any kind; systemd restarts it
    # (Restart=on-failure); the other two elect a leader and keep the queue
    stack.node(leader(), "pkill", "-KILL", "-x", "beam.smp")


def restart_broker() -> None:
    stack.node(leader(), "systemctl", "restart", "rabbitmq-server")


def partition_broker(seconds: float = 30) -> None:
    # the job queue's leader cut off from the other brokers (clients still reach it): it is
    # in the minority, so pause_minority stops it and its clients move to the majority,
    # which elects a new leader; the rules go, and it rejoins
    isolated = leader()
    peers = ", ".join(stack.address(b) for b in stack.BROKERS if b != isolated)
    rules = f"""table inet hurtig_chaos {{
    chain cut_output {{ type filter hook output priority -10; ip daddr {{ {peers} }} drop; }}
    chain cut_input {{ type filter hook input priority -10; ip saddr {{ {peers} }} drop; }}
}}
"""
    stack.node(isolated, "nft", "-f", "-", stdin=rules)
    time.sleep(seconds)
    stack.node(isolated, "nft", "delete", "table", "inet", "hurtig_chaos")


def rebuild_broker() -> None:
    # broker 1's data volume lost: stopped, emptied (its cookie included), and the brokers
    # converged again (playbooks/broker.yml; docs/operating.md, "Rebuilding a broker"); it joins the
    # running two, which the run leaves untouched
    broker = stack.BROKERS[0]
    stack.node(broker, "systemctl", "stop", "rabbitmq-server")
    stack.node(broker, "find", "/var/lib/rabbitmq", "-mindepth", "1", "-delete")
    stack.playbook("broker.yml")


def kill_worker_container() -> None:
    # SIGKILL the worker process from the node, like the OOM killer would: the restart
    # policy brings the container back, its unacked jobs go to the other replica.
    pid = stack.node(stack.WORKER, "docker", "inspect", "-f", "{{.State.Pid}}", "hurtig-record-1").strip()
    stack.node(stack.WORKER, "kill", "-9", pid)


def restart_docker() -> None:
    stack.node(stack.WORKER, "systemctl", "restart", "docker")  # live-restore keeps the workers running


def restart_api() -> None:
    stack.node(stack.API_NODES[0], "docker", "restart", "hurtig-api")


def cut_network(seconds: float = 20, during: Callable[[], None] | None = None) -> None:
    """The worker node cut from every broker for `seconds` (calling `during` meanwhile)."""
    brokers = "{ " + ", ".join(stack.address(b) for b in stack.BROKERS) + " }"
    rules = f"""table inet hurtig_chaos {{
    chain cut_forward {{ type filter hook forward priority -10; ip daddr {brokers} drop; ip saddr {brokers} drop; }}
    chain cut_output {{ type filter hook output priority -10; ip daddr {brokers} drop; }}
    chain cut_input {{ type filter hook input priority -10; ip saddr {brokers} drop; }}
}}
"""
    stack.node(stack.WORKER, "nft", "-f", "-", stdin=rules)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if during:
            during()
        time.sleep(min(0.5, max(0.0, end - time.monotonic())))
    stack.node(stack.WORKER, "nft", "delete", "table", "inet", "hurtig_chaos")


def redeploy_workers() -> None:
    # a new release: every worker container is replaced, one at a time, with a SIGTERM stop
    stack.playbook("redeploy-workers.yml", "-e", json.dumps({"worker_extra_env": {"HURTIG_RELEASE": str(time.time())}}))


def rotate_passwords() -> None:
    # new passwords for the API and worker users (characters that break an unencoded URL),
    # rolled out by site.yml's layers that hold them (docs/operating.md, Operating the brokers);
    # every client connection is then closed, so that the API and the workers must log in
    # again with the file the run wrote, without a restart. Then the vault's values again
    # the same way, so that the stack ends as the inventory says.
    token = uuid.uuid4().hex[:12]
    rotated = {"vault_rabbitmq_api_password": f"api@:/%#{token}", "vault_rabbitmq_worker_password": f"wk?&=/{token}"}
    for extra in (["-e", json.dumps(rotated)], []):
        stack.playbook("../site.yml", "--tags", "rabbitmq-users,api,workers", *extra)
        for broker in stack.BROKERS:  # each node closes its own clients' connections
            stack.node(broker, "rabbitmqctl", "close_all_connections", "password rotated")


# Faults that leave an API node and the broker reachable: every request must get a 202 (a
# 503 is right only while no broker is reachable; an API restart is absorbed by nginx).
ONLY_202 = {"worker_container_kill9", "docker_daemon_restart", "api_container_restart", "rolling_redeploy_workers"}

FAULTS: dict[str, Callable[[], None]] = {
    "broker_kill9": kill_broker,
    "broker_systemctl_restart": restart_broker,
    "worker_container_kill9": kill_worker_container,
    "docker_daemon_restart": restart_docker,
    "api_container_restart": restart_api,
    "network_cut_worker_broker_20s": cut_network,
    "rolling_redeploy_workers": redeploy_workers,
    "rotate_passwords": rotate_passwords,
    "broker_partition_30s": partition_broker,
    "broker_rebuild_from_empty_volume": rebuild_broker,
}


def workers_running() -> int:
    out = stack.node(stack.WORKER, "docker", "ps", "-q", "--filter", f"label=org.hurtig.function={FUNCTION}")
    return len(out.split())


def wait_healthy(timeout: float = 180) -> None:
    """The stack is whole again: all consumers attached and a probe job gets a 202."""
    stack.wait_for(lambda: stack.queue_state(QUEUE)[1] == REPLICAS, timeout, f"{REPLICAS} consumers on {QUEUE}")
    stack.wait_for(lambda: workers_running() == REPLICAS, timeout, "worker containers running")
    probes: list[str] = []

    def probe() -> bool:
        load = stack.post_jobs(4, concurrency=4)
        probes[:] = list(load.accepted)
        return load.statuses == {"202": 4}

    stack.wait_for(probe, timeout, "probe jobs accepted")
    # and processed, so that they do not count in the next fault's figures
    stack.wait_for(lambda: set(probes) <= set(stack.processed().started), timeout, "probe jobs processed")
