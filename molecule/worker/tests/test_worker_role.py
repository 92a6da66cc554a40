"""Dockerized workers: replicas run, jobs are processed and acked, scaling, restarts."""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from functools import cache
from pathlib import Path

import pika
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from helpers import playbook, queue_state, tls_files, tls_options, wait_for

testinfra_hosts = ["ansible://worker-w"]

ROOT = Path(__file__).resolve().parents[3]


@cache
def amqp(user: str = "hurtig-admin", password: str = "test-admin-pw") -> pika.URLParameters:
    """AMQPS to the broker, a client of the deployment's CA."""
    params = pika.URLParameters(f"amqps://{user}:{password}@127.0.0.1:25691/hurtig")
    params.ssl_options = tls_options(tls_files("broker-w", "/etc/rabbitmq/tls"), server_hostname="broker-w")
    return params


def test_the_inventorys_ca_signs_every_certificate(host):
    ca = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ca" / "ca.pem").read_text()
    broker = testinfra.get_host("docker://broker-w")
    assert broker.file("/etc/hurtig/pki/ca.pem").content_string.strip() == ca.strip()
    assert host.file("/etc/hurtig/worker-tls/ca.pem").content_string.strip() == ca.strip()
    issuer = host.check_output(
        'python3 -c "from cryptography import x509; print(x509.load_pem_x509_certificate('
        "open('/etc/hurtig/worker-tls/cert.pem', 'rb').read()).issuer.rfc4514_string())\""
    )
    assert issuer == "CN=the operator's CA"


def containers(host, function: str) -> list[str]:
    out = host.check_output(
        f"docker ps --filter label=org.hurtig.function={function} --filter status=running --format '{{{{.Names}}}}'"
    )
    return sorted(out.split())


def changed(output: str, host: str = "worker-w") -> int:
    return int(re.search(rf"^{host}\s*:.*changed=(\d+)", output, re.M).group(1))


def test_replicas_run_hardened(host):
    assert containers(host, "sleep") == ["hurtig-sleep-1", "hurtig-sleep-2"]
    assert containers(host, "record") == ["hurtig-record-1"]
    info = json.loads(host.check_output("docker inspect hurtig-sleep-1"))[0]
    assert info["Config"]["User"] == "10001:10001"
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert "no-new-privileges:true" in info["HostConfig"]["SecurityOpt"]
    assert info["Config"]["StopSignal"] == "SIGTERM"
    assert info["Config"]["StopTimeout"] == 70  # timeout 60 + grace 10
    assert not any("test-worker-pw" in e for e in info["Config"]["Env"])  # the password is a file
    # each function's own broker user: a container sees only that user's password
    urls = next(e for e in info["Config"]["Env"] if e.startswith("HURTIG_AMQP_URLS="))
    assert "amqps://hurtig-worker-sleep:{password}@" in urls and ":5671/" in urls  # over TLS
    mounts = {m["Destination"]: m["Source"] for m in info["Mounts"]}
    assert mounts["/run/secrets/hurtig"] == "/etc/hurtig/worker/hurtig-worker-sleep"
    assert mounts["/run/secrets/hurtig-tls"] == "/etc/hurtig/worker-tls"
    assert host.check_output("docker exec hurtig-sleep-1 ls /run/secrets/hurtig") == "amqp.password"
    assert sorted(host.check_output("ls /etc/hurtig/worker").split()) == [
        "hurtig-autoscaler",
        "hurtig-worker-burst",
        "hurtig-worker-greet",
        "hurtig-worker-record",
        "hurtig-worker-sleep",
    ]
    wait_for(lambda: "healthy" in host.check_output("docker inspect -f '{{.State.Health.Status}}' hurtig-sleep-1"))


def test_daemon_config(host):
    cfg = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert cfg["live-restore"] is True
    assert cfg["log-opts"]["max-size"] == "10m"


def test_the_settings_digests_of_1x_are_removed(host):
    """prepare.yml wrote the file as 1.x kept it; since 2.0.0 the digests are container labels."""
    assert not host.file("/var/lib/hurtig/worker-containers.json").exists


def publish_jobs(function: str, payloads: list[object]) -> list[str]:
    conn = pika.BlockingConnection(amqp("hurtig-api", "test-api-pw"))
    ch = conn.channel()
    ch.confirm_delivery()
    ids = [str(uuid.uuid4()) for _ in payloads]
    for job_id, payload in zip(ids, payloads, strict=True):
        body = json.dumps({"job_id": job_id, "function": function, "payload": payload}).encode()
        ch.basic_publish("hurtig.jobs", function, body, pika.BasicProperties(delivery_mode=2, message_id=job_id))
    conn.close()
    return ids


def test_jobs_are_processed_and_acked(host):
    ids = publish_jobs("record", [{}] * 50)
    wait_for(lambda: all(host.file(f"/var/lib/hurtig/output/{i}").exists for i in ids[-5:]))
    wait_for(lambda: queue_state(amqp(), "jobs.record")[0] == 0)
    for job_id in ids:
        assert host.file(f"/var/lib/hurtig/output/{job_id}").exists
    assert queue_state(amqp(), "jobs.record.dead")[0] == 0


def address(host) -> str:
    """The node's default IPv4 address (Ansible's default_ipv4: where its services bind here);
    `hostname -I` lists Docker's bridge first on a node that runs Docker."""
    return host.check_output("ip -4 -o route get 192.0.2.1").split(" src ")[1].split()[0]


def node_metrics(host) -> dict[str, float]:
    """The node's worker metrics as the monitoring node scrapes them (its private address)."""
    text = host.check_output(
        f"python3 -c \"import urllib.request as u; print(u.urlopen('http://{address(host)}:9102/metrics').read().decode())\""
    )
    return {f"{name}{{{labels}}}": float(v) for name, labels, v in re.findall(r"^(\w+)\{([^}]*)\} (\S+)$", text, re.M)}


def test_the_node_counts_its_workers_jobs_and_a_restart_does_not_reset_them(host):
    done, started = (
        'hurtig_worker_jobs_succeeded_total{function="record"}',
        'hurtig_worker_jobs_started_total{function="record"}',
    )
    time.sleep(1.5)  # every container writes its figures each second
    before = node_metrics(host)
    publish_jobs("record", [{}] * 20)
    wait_for(lambda: node_metrics(host)[done] >= before.get(done, 0) + 20)
    after = node_metrics(host)
    assert (after[done] - before.get(done, 0), after[started] - before.get(started, 0)) == (20, 20)
    assert after['hurtig_worker_jobs_in_flight{function="record"}'] == 0
    assert after['hurtig_worker_containers{function="record"}'] == 1
    # kill -9: the container starts again and counts on from its file
    pid = host.check_output("docker inspect -f '{{.State.Pid}}' hurtig-record-1")
    host.run_test(f"kill -9 {pid}")
    wait_for(lambda: host.check_output("docker inspect -f '{{.State.Running}}' hurtig-record-1") == "true")
    time.sleep(2)
    assert node_metrics(host)[done] == after[done]
    # served on the private address only, by a hardened container that only reads the directory
    info = json.loads(host.check_output("docker inspect hurtig-worker-metrics"))[0]
    assert (info["Config"]["User"], info["HostConfig"]["ReadonlyRootfs"]) == ("10001:10001", True)
    assert [m["RW"] for m in info["Mounts"]] == [False]
    local = {row.split()[3] for row in host.check_output("ss -Hltn").split("\n")}
    assert [a for a in local if a.endswith(":9102")] == [f"{address(host)}:9102"]


def test_scale_up_and_down_with_changes_only_on_the_first_run(host):
    first = playbook(str(ROOT / "playbooks/scale.yml"), "-e", "function=sleep", "-e", "replicas=5")
    assert changed(first) > 0
    assert containers(host, "sleep") == [f"hurtig-sleep-{i}" for i in range(1, 6)]
    assert containers(host, "record") == ["hurtig-record-1"]  # untouched
    wait_for(lambda: queue_state(amqp(), "jobs.sleep")[1] == 5)
    down = playbook(str(ROOT / "playbooks/scale.yml"), "-e", "function=sleep", "-e", "replicas=1")
    assert changed(down) > 0
    assert containers(host, "sleep") == ["hurtig-sleep-1"]
    # a second run of the same scale changes nothing
    assert changed(playbook(str(ROOT / "playbooks/scale.yml"), "-e", "function=sleep", "-e", "replicas=1")) == 0
    # back to what the inventory says, so that the scenario ends where it started
    playbook(str(ROOT / "playbooks/scale.yml"), "-e", "function=sleep", "-e", "replicas=2")


def test_a_changed_setting_reaches_the_containers_and_an_unchanged_one_costs_no_docker_call(host):
    """A re-run skips a container that carries its settings' digest (label org.hurtig.settings);
    a changed setting goes through Docker."""
    scale = str(ROOT / "playbooks/scale.yml")
    sleep_id = host.check_output("docker inspect -f '{{.Id}}' hurtig-sleep-1")
    record_id = host.check_output("docker inspect -f '{{.Id}}' hurtig-record-1")
    playbook(scale, "-e", "function=sleep", "-e", "replicas=2", "-e", "worker_log_level=DEBUG")
    for name in ("hurtig-sleep-1", "hurtig-sleep-2"):
        assert "HURTIG_LOG_LEVEL=DEBUG" in host.check_output(f"docker inspect -f '{{{{json .Config.Env}}}}' {name}")
    assert host.check_output("docker inspect -f '{{.Id}}' hurtig-sleep-1") != sleep_id
    assert host.check_output("docker inspect -f '{{.Id}}' hurtig-record-1") == record_id  # not this function
    playbook(scale, "-e", "function=sleep", "-e", "replicas=2")  # back to the inventory's
    assert "HURTIG_LOG_LEVEL=INFO" in host.check_output("docker inspect -f '{{json .Config.Env}}' hurtig-sleep-1")
    again = playbook(scale, "-e", "function=sleep", "-e", "replicas=2")
    assert changed(again) == 0
    assert "hurtig-sleep-1 (started)" not in again  # skipped: no docker_container call
    wait_for(lambda: queue_state(amqp(), "jobs.sleep")[1] == 2)


def test_killed_container_is_restarted(host):
    pid = host.check_output("docker inspect -f '{{.State.Pid}}' hurtig-record-1")
    host.run_test(f"kill -9 {pid}")
    wait_for(lambda: host.check_output("docker inspect -f '{{.RestartCount}}' hurtig-record-1") != "0")
    wait_for(lambda: containers(host, "record") == ["hurtig-record-1"])
    wait_for(lambda: queue_state(amqp(), "jobs.record")[1] == 1)


def test_docker_restart_keeps_workers_running(host):
    before = host.check_output("docker inspect -f '{{.State.StartedAt}}' hurtig-sleep-1")
    host.run_test("systemctl restart docker")
    wait_for(lambda: host.run("docker info").rc == 0)
    assert host.check_output("docker inspect -f '{{.State.StartedAt}}' hurtig-sleep-1") == before  # live-restore


def test_a_job_returned_by_five_redeploys_is_processed_not_dead_lettered(host):
    """RabbitMQ before 4.3 counts every return toward x-delivery-limit (a worker stopped
    mid-job included); retries are decided by the worker's own count of failed attempts."""
    (job_id,) = publish_jobs("sleep", ["job.........."])  # 10 s
    for _ in range(5):  # more returns than max_retries (3): the old delivery limit dead-lettered it
        wait_for(lambda: queue_state(amqp(), "jobs.sleep") == (0, 2), timeout=60, interval=0.2)  # taken
        time.sleep(1)  # mid-job
        host.run_test("docker restart -t 1 hurtig-sleep-1 hurtig-sleep-2")  # SIGTERM, SIGKILL after 1 s

    def done() -> bool:
        logs = host.run("docker logs hurtig-sleep-1 2>&1; docker logs hurtig-sleep-2 2>&1").stdout
        return any(job_id in line and '"job ok"' in line for line in logs.splitlines())

    wait_for(done, timeout=60)
    assert queue_state(amqp(), "jobs.sleep.dead")[0] == 0
