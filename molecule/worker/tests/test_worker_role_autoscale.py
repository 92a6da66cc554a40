"""The autoscaled function (burst): its containers, the controller's least privilege, a
burst scaled out within seconds and back in after the quiet period (the controller killed
in between), and the bounds the scale playbook sets (after test_worker_role.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from helpers import playbook, queue_state, run_playbook, wait_for
from test_worker_role import ROOT, amqp, containers, publish_jobs

testinfra_hosts = ["ansible://worker-w"]


def running(host, function: str) -> list[str]:
    return containers(host, function)


def done_ids(host, function: str) -> set[str]:
    out = host.run(
        f"for c in $(docker ps -a -q --filter label=org.hurtig.function={function}); do docker logs $c 2>&1; done"
    ).stdout
    return {json.loads(line)["job_id"] for line in out.splitlines() if '"job ok"' in line}


def test_autoscaled_containers_are_created_and_min_runs(host):
    names = host.check_output(
        "docker ps -a --filter label=org.hurtig.function=burst --format '{{.Names}} {{.State}}'"
    ).splitlines()
    assert sorted(names) == ["hurtig-burst-1 running"] + [f"hurtig-burst-{i} created" for i in (2, 3, 4)]
    info = json.loads(host.check_output("docker inspect hurtig-autoscaler"))[0]
    assert info["State"]["Running"] and info["Config"]["User"] == "10001:10001"
    assert info["HostConfig"]["ReadonlyRootfs"] is True and info["HostConfig"]["CapDrop"] == ["ALL"]
    env = dict(e.split("=", 1) for e in info["Config"]["Env"])
    assert "amqps://hurtig-autoscaler:{password}@" in env["HURTIG_AMQP_URLS"]
    assert json.loads(env["HURTIG_AUTOSCALE_FUNCTIONS"])[0]["containers"] == [f"hurtig-burst-{i}" for i in (1, 2, 3, 4)]
    assert not any("test-worker-pw" in e for e in info["Config"]["Env"])
    # its broker user may do nothing but passive declares
    perms = testinfra.get_host("docker://broker-w").check_output(
        "rabbitmqctl -q list_user_permissions hurtig-autoscaler --formatter json"
    )
    assert json.loads(perms) == [{"vhost": "hurtig", "configure": "^$", "write": "^$", "read": "^$"}]
    wait_for(lambda: queue_state(amqp(), "jobs.burst")[1] == 1)


def test_a_burst_scales_out_within_seconds_and_back_in_after_the_quiet_period(host):
    started = time.monotonic()
    ids = publish_jobs("burst", ["job.."] * 24)  # 2 s each: 48 s on one replica, 12 s on four
    wait_for(lambda: queue_state(amqp(), "jobs.burst")[1] == 4, timeout=15, interval=0.1)
    to_max = time.monotonic() - started
    assert to_max < 5, to_max
    assert running(host, "burst") == [f"hurtig-burst-{i}" for i in (1, 2, 3, 4)]
    # the controller killed mid-burst: the containers stay, the restarted one resumes
    pid = host.check_output("docker inspect -f '{{.State.Pid}}' hurtig-autoscaler")
    host.run_test(f"kill -9 {pid}")
    wait_for(lambda: host.check_output("docker inspect -f '{{.RestartCount}}' hurtig-autoscaler") != "0")
    assert running(host, "burst") == [f"hurtig-burst-{i}" for i in (1, 2, 3, 4)]
    wait_for(lambda: done_ids(host, "burst") >= set(ids), timeout=60)  # nothing lost
    assert queue_state(amqp(), "jobs.burst.dead")[0] == 0
    # quiet: one replica less every 3 s, down to min (1), SIGTERM lets nothing in flight be lost
    wait_for(lambda: running(host, "burst") == ["hurtig-burst-1"], timeout=40, interval=0.5)
    wait_for(lambda: queue_state(amqp(), "jobs.burst")[1] == 1)
    logs = host.check_output("docker logs hurtig-autoscaler 2>&1")
    steps = [json.loads(line) for line in logs.splitlines() if '"msg": "scale"' in line]
    ups = [s for s in steps if s["to"] > (s["from"] or 0)]
    downs = [s for s in steps if s["to"] < (s["from"] or 0)]
    assert ups and downs[-3:] and [s["to"] for s in downs[-3:]] == [3, 2, 1]
    assert host.check_output("docker inspect -f '{{.State.ExitCode}}' hurtig-burst-4") == "0"  # drained, not killed
    assert containers(host, "sleep") == ["hurtig-sleep-1", "hurtig-sleep-2"]  # fixed counts: not its business
    assert containers(host, "record") == ["hurtig-record-1"]


def test_scale_sets_the_bounds_of_an_autoscaled_function(host):
    scale = str(ROOT / "playbooks/scale.yml")
    playbook(scale, "-e", "function=burst", "-e", "min_replicas=2", "-e", "max_replicas=2")
    wait_for(lambda: running(host, "burst") == ["hurtig-burst-1", "hurtig-burst-2"], timeout=20)
    assert "hurtig-burst-3" not in host.check_output("docker ps -a --format '{{.Names}}'")  # max 2: two created
    refused = run_playbook(scale, "-e", "function=burst", "-e", "min_replicas=3", "-e", "max_replicas=2")
    assert refused.returncode != 0 and "min <= max" in refused.stdout + refused.stderr
    # the controller disabled: removed, and nothing changes the count any more
    playbook(scale, "-e", "function=burst", "-e", "max_replicas=4", "-e", "worker_autoscale_enabled=false")
    assert "hurtig-autoscaler" not in host.check_output("docker ps -a --format '{{.Names}}'")
    time.sleep(5)  # more than the quiet period
    assert running(host, "burst") == ["hurtig-burst-1", "hurtig-burst-2"]
    # (the last test of the scenario: the next converge puts the controller back)
