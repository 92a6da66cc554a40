"""A 3-node cluster: it forms, quorum queues have 3 members, losing a node loses nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pika
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from helpers import drain_queue, wait_for

testinfra_hosts = ["ansible://rabbitmq-c1"]

NODES = {"rabbitmq-c1": 25681, "rabbitmq-c2": 25682, "rabbitmq-c3": 25683}


def node(name: str):
    return testinfra.get_host(f"docker://{name}")


def connect(port: int, user: str = "hurtig-admin", password: str = "test-admin-pw") -> pika.BlockingConnection:
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            host="127.0.0.1",
            port=port,
            virtual_host="hurtig",
            credentials=pika.PlainCredentials(user, password),
            connection_attempts=30,
            retry_delay=1,
        )
    )


def drain(port: int, queue: str = "jobs.sleep") -> list[str]:
    """Consume and ack every message of the queue as the worker user; their message ids."""
    return drain_queue(connect(port, "hurtig-worker", "test-worker-pw"), queue)


def running_nodes(host) -> list[str]:
    return sorted(json.loads(host.check_output("rabbitmqctl cluster_status --formatter json"))["running_nodes"])


def test_cluster_has_three_running_nodes(host):
    assert running_nodes(host) == [f"rabbit@{n}" for n in sorted(NODES)]


def test_quorum_queue_has_three_members(host):
    queues = json.loads(host.check_output("rabbitmqctl list_queues -p hurtig name type members --formatter json"))
    by_name = {q["name"]: q for q in queues}
    assert by_name["jobs.sleep"]["type"] == "quorum"
    assert sorted(by_name["jobs.sleep"]["members"]) == [f"rabbit@{n}" for n in sorted(NODES)]


def test_queue_stays_available_with_one_node_down_and_node_rejoins(host):
    c3 = node("rabbitmq-c3")
    c3.run_test("systemctl stop rabbitmq-server")
    try:
        wait_for(lambda: len(running_nodes(host)) == 2, timeout=90, interval=2)
        # publish through node 1 and node 2 with confirms as the API user
        ids = []
        for port in (25681, 25682):
            conn = connect(port, "hurtig-api", "test-api-pw")
            ch = conn.channel()
            ch.confirm_delivery()
            for _ in range(50):
                job_id = str(uuid.uuid4())
                ch.basic_publish(
                    "hurtig.jobs",
                    "sleep",
                    b"{}",
                    pika.BasicProperties(delivery_mode=2, message_id=job_id),
                    mandatory=True,
                )
                ids.append(job_id)
            conn.close()
        # consume them all as the worker user through node 2
        assert sorted(drain(25682)) == sorted(ids)
    finally:
        c3.run_test("systemctl start rabbitmq-server")
    wait_for(lambda: len(running_nodes(host)) == 3, timeout=90, interval=2)
    assert running_nodes(c3) == [f"rabbit@{n}" for n in sorted(NODES)]


def test_rolling_restart_keeps_every_confirmed_job(host):
    ids = []
    conn = connect(25681, "hurtig-api", "test-api-pw")
    ch = conn.channel()
    ch.confirm_delivery()
    for _ in range(100):
        job_id = str(uuid.uuid4())
        ch.basic_publish(
            "hurtig.jobs", "sleep", b"{}", pika.BasicProperties(delivery_mode=2, message_id=job_id), mandatory=True
        )
        ids.append(job_id)
    conn.close()
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.cfg")
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(root / "playbooks/rolling-restart-brokers.yml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert out.stdout.count("TASK [Restart the node]") == 3  # one node at a time
    assert running_nodes(host) == [f"rabbit@{n}" for n in sorted(NODES)]
    assert sorted(drain(25683)) == sorted(ids)
