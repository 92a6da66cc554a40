"""The staging stack operated: the check and scale playbooks, autoscaling and
back-pressure through the ingress (after test_full_stack.py, on the same stack)."""

from __future__ import annotations

import json
import re
import time

import requests
import urllib3
from staging import AUTH, INGRESS, playbook, queue, stack, wait_for

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

testinfra_hosts = [f"docker://{stack.WORKER}"]


def test_check_playbook_reports_queues_and_workers():
    out = playbook("check.yml")
    shown = "\n".join(line for line in out.splitlines() if "ready=" in line or "running" in line)
    assert re.search(r"record: ready=\d+ unacked=\d+ consumers=2 retrying=\d+ dead=0", out), shown
    for name in ("record", "resize", "sleep"):
        n = stack.function(name)["replicas"]
        assert f"{name}: {n}/{n} running" in out, shown
    assert re.search(r"burst: (\d+)/\1 running \(autoscaled: \d+ over the group, 1\.\.6\)", out), shown


def test_a_burst_through_the_ingress_scales_out_and_loses_nothing(host):
    """Staging's burst scales on its queue (1 to 6): 48 one-second jobs posted through the
    ingress start the five created containers within seconds; every job is done once."""

    def running() -> int:
        return len(host.check_output("docker ps -q --filter label=org.hurtig.function=burst").split())

    wait_for(lambda: running() == 1 and queue("jobs.burst") == (0, 1), timeout=90)  # min, after earlier tests
    started = time.monotonic()
    load = stack.post_jobs(48, concurrency=8, function="burst", payload={"ms": 1000})
    assert len(load.accepted) == 48, load
    wait_for(lambda: queue("jobs.burst")[1] == 6, timeout=15, interval=0.1)
    to_max = time.monotonic() - started
    assert to_max < 8, to_max

    def done() -> set[str]:
        out = host.run(
            "for c in $(docker ps -a -q --filter label=org.hurtig.function=burst); do docker logs $c 2>&1; done"
        ).stdout
        return {json.loads(line)["job_id"] for line in out.splitlines() if '"job ok"' in line}

    wait_for(lambda: done() >= set(load.accepted), timeout=60)
    assert queue("jobs.burst.dead")[0] == 0
    state = json.loads(host.file("/var/lib/hurtig/autoscaler/state.json").content_string)
    assert state["functions"]["burst"]["max"] == 6


def test_scale_playbook_changes_the_container_count(host):
    def running() -> int:
        return len(host.check_output("docker ps -q --filter label=org.hurtig.function=record").split())

    playbook("scale.yml", "-e", "function=record", "-e", "replicas=4")
    assert running() == 4
    wait_for(lambda: queue("jobs.record")[1] == 4)
    playbook("scale.yml", "-e", "function=record", "-e", "replicas=2")
    assert running() == 2


def test_a_full_function_gets_503_while_the_others_keep_accepting():
    """Back-pressure per function, through the ingress: staging bounds resize's queue
    (max_ready). With its workers stopped, jobs over the bound get 503 queue_full with
    Retry-After while record keeps getting 202; every accepted job is in the queue; no broker
    raises an alarm."""
    bound = stack.function("resize")["max_ready"]
    replicas = stack.function("resize")["replicas"]
    playbook("scale.yml", "-e", "function=resize", "-e", "replicas=0")
    try:
        wait_for(lambda: queue("jobs.resize")[1] == 0)
        before = queue("jobs.resize")[0]
        load = stack.post_jobs(bound + 300, concurrency=16, function="resize", payload={"size": 0})
        assert set(load.statuses) == {"202", "503"}, load.statuses
        # a quorum queue refuses jobs once it holds more than the bound (publishes in flight
        # at that moment get in): between the bound and the bound plus the concurrent clients
        assert bound <= before + len(load.accepted) <= bound + 16, load.statuses
        r = requests.post(f"{INGRESS}/v1/functions/resize/jobs", json={}, headers=AUTH, verify=False, timeout=10)
        assert r.status_code == 503 and r.json()["error"] == "queue_full", r.text
        assert r.headers["Content-Type"].startswith("application/problem+json") and int(r.headers["Retry-After"]) > 0
        others = stack.post_jobs(20, concurrency=4, function="record")
        assert others.statuses == {"202": 20}, others.statuses
        assert queue("jobs.resize")[0] == before + len(load.accepted)  # nothing accepted is lost
        for broker in stack.BROKERS:
            stack.node(broker, "rabbitmq-diagnostics", "-q", "check_alarms")  # fails on any alarm
    finally:  # the test's own jobs: not for the workers
        stack.node(stack.BROKER, "rabbitmqctl", "-q", "purge_queue", "-p", "hurtig", "jobs.resize")
        playbook("scale.yml", "-e", "function=resize", "-e", f"replicas={replicas}")


def test_bench_locations_reach_the_api_with_and_without_upstream_keepalive():
    for path in ("/bench/api-healthz", "/bench/api-healthz-no-keepalive"):
        r = requests.get(f"{INGRESS}{path}", verify=False, timeout=10)
        assert r.status_code == 200, path
    assert requests.get(f"{INGRESS}/bench/return202", verify=False, timeout=10).status_code == 202
