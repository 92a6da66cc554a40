"""A 3-node cluster: it forms, quorum queues have 3 members, losing a node loses nothing;
a run while broker 1 is down resets nobody; broker 1 rebuilt from an empty volume rejoins."""

from __future__ import annotations

import json
import re
import sys
import uuid
from functools import cache
from pathlib import Path

import pika
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from helpers import ROOT, broker_password, drain_queue, playbook, run_playbook, tls_files, tls_options, wait_for

testinfra_hosts = ["ansible://rabbitmq-c1"]

NODES = {"rabbitmq-c1": 25681, "rabbitmq-c2": 25682, "rabbitmq-c3": 25683}


def node(name: str):
    return testinfra.get_host(f"docker://{name}")


@cache
def ca_and_client() -> Path:
    return tls_files("rabbitmq-c1", "/etc/rabbitmq/tls")


def connect(port: int, user: str = "hurtig-admin", password: str = "test-admin-pw") -> pika.BlockingConnection:
    """AMQPS to the node published on `port`, as a client of the cluster's CA (broker 1's
    own client certificate), checking the node's certificate for its name."""
    name = next(n for n, p in NODES.items() if p == port)
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            host="127.0.0.1",
            port=port,
            virtual_host="hurtig",
            credentials=pika.PlainCredentials(user, password),
            connection_attempts=30,
            retry_delay=1,
            ssl_options=tls_options(ca_and_client(), server_hostname=name),
        )
    )


def drain(port: int, queue: str = "jobs.sleep") -> list[str]:
    """Consume and ack every message of the queue as the function's user; their message ids."""
    user = "hurtig-worker-" + queue.split(".")[1]
    return drain_queue(connect(port, user, broker_password("test-worker-pw", user)), queue)


def publish_confirmed(port: int, count: int = 100) -> list[str]:
    """Publish persistent jobs as the API user with publisher confirms; their message ids."""
    conn = connect(port, "hurtig-api", "test-api-pw")
    ch = conn.channel()
    ch.confirm_delivery()
    ids = []
    for _ in range(count):
        job_id = str(uuid.uuid4())
        ch.basic_publish(
            "hurtig.jobs", "sleep", b"{}", pika.BasicProperties(delivery_mode=2, message_id=job_id), mandatory=True
        )
        ids.append(job_id)
    conn.close()
    return ids


def members(host) -> list[str]:
    return sorted(json.loads(host.check_output("rabbitmqctl cluster_status --formatter json"))["disk_nodes"])


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain(out: str) -> str:
    """Ansible's output without colours and line wrapping, for substring checks."""
    return " ".join(ANSI.sub("", out).split())


def recap(out: str) -> dict[str, str]:
    """PLAY RECAP lines by host."""
    text = ANSI.sub("", out)
    lines = text[text.rindex("PLAY RECAP") :].splitlines()[1:]
    return {line.split()[0]: line for line in lines if " ok=" in line}


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
        ids = publish_confirmed(25681, 50) + publish_confirmed(25682, 50)
        # consume them all as the worker user through node 2
        assert sorted(drain(25682)) == sorted(ids)
    finally:
        c3.run_test("systemctl start rabbitmq-server")
    wait_for(lambda: len(running_nodes(host)) == 3, timeout=90, interval=2)
    assert running_nodes(c3) == [f"rabbit@{n}" for n in sorted(NODES)]


def in_maintenance(host) -> bool:
    out = host.check_output("rabbitmqctl eval 'rabbit_maintenance:is_being_drained_local_read(node()).'")
    return out.strip() == "true"


def test_rolling_upgrade_drains_one_node_at_a_time_and_keeps_every_confirmed_job(host):
    ids = publish_confirmed(25681)
    out = playbook(ROOT / "playbooks/rolling-restart-brokers.yml", "-e", "upgrade=true")
    for step in ("Drain the node", "Upgrade RabbitMQ", "Restart the node", "Revive the node"):
        assert plain(out).count(f"TASK [rabbitmq : {step}") == 3, step  # one node at a time
    assert "TASK [Run the post-upgrade tasks" in plain(out)
    assert running_nodes(host) == ALL
    assert not any(in_maintenance(node(n)) for n in NODES)
    assert sorted(drain(25683)) == sorted(ids)


ALL = [f"rabbit@{n}" for n in sorted(NODES)]


def test_a_run_while_broker_1_is_down_resets_nobody(host):
    """The old role reset brokers 2 and 3 when it could not see broker 1 running."""
    ids = publish_confirmed(25682)
    c1 = node("rabbitmq-c1")
    c1.run_test("systemctl stop rabbitmq-server")
    try:
        wait_for(lambda: len(running_nodes(node("rabbitmq-c2"))) == 2, timeout=90, interval=2)
        # broker 1 is down: the operator runs the broker play on the others
        out = playbook(ROOT / "playbooks/broker.yml", "--limit", "rabbitmq-c2,rabbitmq-c3")
        for name in ("rabbitmq-c2", "rabbitmq-c3"):
            assert " changed=0 " in recap(out)[name], recap(out)[name]
            assert members(node(name)) == ALL  # still members with broker 1: nothing reset or forgotten
        assert "is a member of a cluster of 3: never reset" in plain(out)
    finally:
        c1.run_test("systemctl start rabbitmq-server")
    wait_for(lambda: running_nodes(host) == ALL, timeout=120, interval=2)
    assert sorted(drain(25681)) == sorted(ids)


def test_broker_1_rebuilt_from_an_empty_volume_rejoins_and_nothing_is_lost(host):
    ids = publish_confirmed(25682)
    c1 = node("rabbitmq-c1")
    c1.run_test("systemctl stop rabbitmq-server")
    c1.run_test("find /var/lib/rabbitmq -mindepth 1 -delete")  # an empty data volume, cookie included
    out = playbook(ROOT / "playbooks/broker.yml")
    plans = re.findall(r'"msg": "(rabbit@[^"]*)"', plain(out))
    joined = r"rabbit@rabbitmq-c1 holds no queue: it joins rabbit@rabbitmq-c[23]"
    assert any(re.fullmatch(joined, p) for p in plans), plans
    for name in ("rabbitmq-c2", "rabbitmq-c3"):
        assert " changed=0 " in recap(out)[name], recap(out)[name]
    assert running_nodes(host) == ALL
    queues = json.loads(host.check_output("rabbitmqctl list_queues -p hurtig name members --formatter json"))
    assert sorted({q["name"]: q for q in queues}["jobs.sleep"]["members"]) == ALL
    assert sorted(drain(25681)) == sorted(ids)
    # a second run changes nothing on the rebuilt node (the others were already unchanged
    # by the first run, so only this one is run again)
    again = playbook(ROOT / "playbooks/broker.yml", "--limit", "rabbitmq-c1")
    assert " changed=0 " in recap(again)["rabbitmq-c1"], recap(again)


def test_a_standalone_node_that_holds_queues_is_not_reset(host):
    """Broker 3 taken out of the cluster keeps a queue of its own: the play refuses to reset it."""
    c3 = node("rabbitmq-c3")
    c3.run_test("rabbitmqctl stop_app")
    host.run_test("rabbitmqctl forget_cluster_node rabbit@rabbitmq-c3")
    c3.run_test("rabbitmqctl reset && rabbitmqctl start_app")
    c3.run_test(
        'rabbitmqctl eval \'rabbit_amqqueue:declare(rabbit_misc:r(<<"hurtig">>, queue, <<"mine">>),'
        ' true, false, [], none, <<"test">>).\''
    )
    refused = run_playbook(ROOT / "playbooks/broker.yml", "--limit", "rabbitmq-c3")
    assert refused.returncode != 0
    assert "rabbit@rabbitmq-c3 is standalone and holds 1 queue(s)" in plain(refused.stdout + refused.stderr)
    assert members(c3) == ["rabbit@rabbitmq-c3"]
    # the explicit variable lets it join (its queue is dropped)
    playbook(ROOT / "playbooks/broker.yml", "--limit", "rabbitmq-c3", "-e", "rabbitmq_cluster_force_reset=true")
    assert running_nodes(host) == ALL


def test_a_new_cookie_for_a_running_cluster_stops_the_play_before_any_broker_stops(host):
    """The play runs the brokers in parallel: a changed rabbitmq_erlang_cookie would stop
    every member at once. It fails instead, on every broker, and all keep running."""
    failed = run_playbook(ROOT / "playbooks/broker.yml", "-e", "rabbitmq_erlang_cookie=another-cookie-0123456789abcdef")
    assert failed.returncode != 0
    said = plain(failed.stdout + failed.stderr)  # Ansible writes a failure's message to stderr
    assert "This broker runs with an Erlang cookie other than rabbitmq_erlang_cookie" in said
    assert all(" failed=1 " in recap(failed.stdout)[name] for name in NODES), recap(failed.stdout)
    assert running_nodes(host) == ALL


def test_a_config_change_restarts_each_broker_through_drain_and_revive(host):
    """The role's restart handler: quorum plus one, drain, restart, revive; nothing lost. The
    play runs the brokers in parallel, the restarts go one node at a time: each node's
    drain, restart and revive before the next node's drain."""
    ids = publish_confirmed(25682)
    out = playbook(ROOT / "playbooks/broker.yml", "-e", "rabbitmq_heartbeat=31")
    steps = ("Drain the node", "Restart the node", "Revive the node")  # the restart steps it includes
    headers = re.findall(r"RUNNING HANDLER \[rabbitmq : ([^\]]+)\]", plain(out))
    assert [h for h in headers if h in steps] == list(steps) * 3
    sections = re.split(r"\n(?=RUNNING HANDLER \[|TASK \[)", ANSI.sub("", out))
    hosts_of = [re.findall(r"^(?:ok|changed): \[([\w-]+)\]", sec, re.M) for sec in sections]
    drained = [hosts for sec, hosts in zip(sections, hosts_of, strict=True) if "[rabbitmq : Drain the node]" in sec]
    assert sorted(h for hosts in drained for h in hosts) == sorted(NODES), drained
    assert all(len(hosts) == 1 for hosts in drained), drained  # one node per drain
    assert " changed=0 " not in recap(out)["rabbitmq-c1"]
    assert running_nodes(host) == ALL
    assert not any(in_maintenance(node(n)) for n in NODES)
    assert "heartbeat = 31" in host.file("/etc/rabbitmq/rabbitmq.conf").content_string
    assert sorted(drain(25681)) == sorted(ids)
