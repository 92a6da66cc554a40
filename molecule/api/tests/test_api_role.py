"""The API node: a job posted to the API lands, persisted, in its function's queue."""

from __future__ import annotations

import json

import pika
import requests

testinfra_hosts = ["ansible://api-a"]

API = "http://127.0.0.1:23000"


def test_container_runs_hardened_with_one_process_per_setting(host):
    info = json.loads(host.check_output("docker inspect hurtig-api"))[0]
    assert info["HostConfig"]["NetworkMode"] == "host"
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert info["Config"]["User"] == "10001:10001"
    assert "HURTIG_API_WORKERS=2" in info["Config"]["Env"]
    assert not any("test-api-pw" in e for e in info["Config"]["Env"])


def test_job_posted_to_the_api_lands_in_the_queue():
    r = requests.post(f"{API}/v1/functions/sleep/jobs", json={"task": "Hi."}, timeout=10)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    conn = pika.BlockingConnection(pika.URLParameters("amqp://hurtig-admin:test-admin-pw@127.0.0.1:25692/hurtig"))
    ch = conn.channel()
    method, props, body = ch.basic_get("jobs.sleep", auto_ack=True)
    conn.close()
    assert method is not None
    assert props.message_id == job_id
    assert props.delivery_mode == 2
    assert json.loads(body)["payload"] == {"task": "Hi."}


def test_ready_and_unknown_function():
    assert requests.get(f"{API}/readyz", timeout=5).status_code == 200
    assert requests.post(f"{API}/v1/functions/nope/jobs", json={}, timeout=5).status_code == 404


def test_a_supervisor_runs_the_processes_and_the_health_check_reads_readyz(host):
    info = json.loads(host.check_output("docker inspect hurtig-api"))[0]
    assert "/readyz" in " ".join(info["Config"]["Healthcheck"]["Test"])
    # the password's directory is mounted (a rotated file is seen), and only the API's
    [mount] = [m for m in info["Mounts"] if m["Destination"] == "/run/secrets/hurtig"]
    assert mount["Source"] == "/etc/hurtig/api" and mount["RW"] is False
    assert host.file("/etc/hurtig/api").listdir() == ["amqp-api.password"]
    top = host.check_output("docker top hurtig-api -o pid,ppid,args").splitlines()[1:]
    api = {pid: ppid for pid, ppid, args in (row.split(None, 2) for row in top) if "python3" in args}
    [supervisor] = [pid for pid, ppid in api.items() if ppid not in api]
    assert sorted(ppid for ppid in api.values() if ppid == supervisor) == [supervisor] * 2  # HURTIG_API_WORKERS=2
