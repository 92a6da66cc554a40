"""The API node: a job posted to the API lands, persisted, in its function's queue."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pika
import requests
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from helpers import tls_files, tls_options

testinfra_hosts = ["ansible://api-a"]

API = "http://127.0.0.1:23000"
KEY = "molecule-api-scenario-key-0123456789"  # its SHA-256 is in molecule.yml
AUTH = {"Authorization": f"Bearer {KEY}"}


def admin() -> pika.ConnectionParameters:
    """AMQPS to the broker as its administrator, a client of the deployment's CA."""
    params = pika.URLParameters("amqps://hurtig-admin:test-admin-pw@127.0.0.1:25692/hurtig")
    params.ssl_options = tls_options(tls_files("broker-a", "/etc/rabbitmq/tls"), server_hostname="broker-a")
    return params


def test_the_api_reaches_the_broker_over_tls_only(host):
    info = json.loads(host.check_output("docker inspect hurtig-api"))[0]
    env = dict(e.split("=", 1) for e in info["Config"]["Env"])
    assert all(url.startswith("amqps://") and ":5671/" in url for url in env["HURTIG_AMQP_URLS"].split(","))
    [mount] = [m for m in info["Mounts"] if m["Destination"] == "/run/secrets/hurtig-tls"]
    assert mount["Source"] == "/etc/hurtig/api-tls" and mount["RW"] is False
    key = host.file("/etc/hurtig/api-tls/key.pem")
    assert (key.uid, key.mode) == (10001, 0o440)
    broker = testinfra.get_host("docker://broker-a")
    rows = broker.check_output("rabbitmqctl -q list_connections user ssl --formatter json")
    api = [c for c in json.loads(rows) if c["user"] == "hurtig-api"]
    assert len(api) == 2 and all(c["ssl"] for c in api)  # one per process (HURTIG_API_WORKERS=2)


def test_the_listen_queue_holds_thousands_of_connections(host):
    """aiohttp re-listens with a backlog of 128 unless told: at 4,096 clients through nginx the
    new upstream connections overflowed it and timed out (make bench, many_clients)."""
    [row] = host.check_output("ss -Hltn 'sport = :3000'").splitlines()
    assert row.split()[2] == "4096", row  # LISTEN Recv-Q Send-Q: Send-Q is the backlog


def test_container_runs_hardened_with_one_process_per_setting(host):
    info = json.loads(host.check_output("docker inspect hurtig-api"))[0]
    assert info["HostConfig"]["NetworkMode"] == "host"
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert info["Config"]["User"] == "10001:10001"
    assert "HURTIG_API_WORKERS=2" in info["Config"]["Env"]
    assert not any("test-api-pw" in e for e in info["Config"]["Env"])


def test_job_posted_to_the_api_lands_in_the_queue():
    r = requests.post(f"{API}/v1/functions/sleep/jobs", json={"task": "Hi."}, headers=AUTH, timeout=10)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    conn = pika.BlockingConnection(admin())
    ch = conn.channel()
    method, props, body = ch.basic_get("jobs.sleep", auto_ack=True)
    conn.close()
    assert method is not None
    assert props.message_id == job_id
    assert props.delivery_mode == 2
    assert json.loads(body)["payload"] == {"task": "Hi."}


def test_ready_unknown_function_and_no_key():
    assert requests.get(f"{API}/readyz", timeout=5).status_code == 200
    assert requests.post(f"{API}/v1/functions/nope/jobs", json={}, headers=AUTH, timeout=5).status_code == 404
    assert requests.post(f"{API}/v1/functions/sleep/jobs", json={}, timeout=5).status_code == 401


def test_a_supervisor_runs_the_processes_and_the_health_check_reads_readyz(host):
    info = json.loads(host.check_output("docker inspect hurtig-api"))[0]
    assert "/readyz" in " ".join(info["Config"]["Healthcheck"]["Test"])
    # the password's directory is mounted (a rotated file is seen), and only the API's
    [mount] = [m for m in info["Mounts"] if m["Destination"] == "/run/secrets/hurtig"]
    assert mount["Source"] == "/etc/hurtig/api" and mount["RW"] is False
    assert sorted(host.file("/etc/hurtig/api").listdir()) == ["amqp-api.password", "api-keys.json"]
    keys = host.file("/etc/hurtig/api/api-keys.json")
    assert (keys.uid, keys.mode) == (10001, 0o400) and KEY not in keys.content_string  # only its hash
    top = host.check_output("docker top hurtig-api -o pid,ppid,args").splitlines()[1:]
    # the health check is a python3 too, started every 10 s by Docker: not one of the API's
    rows = [row.split(None, 2) for row in top]
    api = {pid: ppid for pid, ppid, args in rows if "python3" in args and "/readyz" not in args}
    [supervisor] = [pid for pid, ppid in api.items() if ppid not in api]
    assert sorted(ppid for ppid in api.values() if ppid == supervisor) == [supervisor] * 2  # HURTIG_API_WORKERS=2
