"""The product: a job travels from HTTPS through nginx, the API and RabbitMQ to a worker, on
the shipped staging inventory converged over SSH (molecule/default)."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import time

import pika
import requests
import testinfra
import urllib3
from PIL import Image
from staging import AUTH, INGRESS, queue, stack, wait_for

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

testinfra_hosts = [f"docker://{stack.WORKER}"]


def test_ansible_connects_over_ssh_as_the_deploy_user_with_become():
    out = subprocess.run(
        ["ansible", "-i", str(stack.EPHEMERAL / "inventory"), "all", "-m", "ansible.builtin.command",
         "-a", "id -un", "-e", "ansible_become=false", "-o"],
        env={**stack.molecule_env(), "ANSIBLE_CONFIG": str(stack.EPHEMERAL / "ansible.cfg")},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout)  # coloured unless the caller says otherwise
    lines = [line for line in plain.splitlines() if "rc=0" in line]
    hosts = stack.hosts()
    assert len(lines) == len(hosts) and all(line.rstrip().endswith("deploy") for line in lines), out.stdout


def test_root_can_no_longer_log_in_over_ssh():
    ssh = stack.EPHEMERAL / "ssh"
    out = subprocess.run(
        ["ssh", "-i", str(ssh / "id_ed25519"), "-o", f"UserKnownHostsFile={ssh / 'known_hosts'}",
         "-o", "BatchMode=yes", f"root@{stack.address(stack.BROKER)}", "true"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert out.returncode == 255 and "Permission denied" in out.stderr, out.stderr


def test_jobs_posted_over_https_are_processed_by_a_worker(host):
    ids = []
    with requests.Session() as s:
        s.headers.update(AUTH)
        for i in range(100):
            r = s.post(f"{INGRESS}/v1/functions/record/jobs", json={"i": i}, verify=False, timeout=10)
            assert r.status_code == 202, r.text
            ids.append(r.json()["job_id"])
    # one listing per poll (a file check per id costs a docker exec each: slow on a busy CI)
    wait_for(lambda: set(ids) <= set(host.check_output("ls /var/lib/hurtig/output").split()), timeout=120)
    wait_for(lambda: queue("jobs.record")[0] == 0)
    assert queue("jobs.record.dead")[0] == 0


def accepted_records(name: str) -> int:
    """What an API node reports it accepted for `record`: one scrape, whichever of its
    processes answers, counts the jobs of all of them (hurtig.metrics)."""
    api = testinfra.get_host(f"docker://{name}")
    out = api.check_output(f"curl -s http://{stack.address(name)}:{stack.contract()['hurtig_api_port']}/metrics")
    found = re.search(r'hurtig_api_jobs_accepted_total\{function="record"\} (\d+)', out)
    return int(found.group(1)) if found else 0


def test_both_api_nodes_serve(host):
    time.sleep(1.5)  # a process shares its figures every second
    before = {name: accepted_records(name) for name in stack.API_NODES}
    with requests.Session() as s:
        s.headers.update(AUTH)
        for _ in range(40):
            assert s.post(f"{INGRESS}/v1/functions/record/jobs", json={}, verify=False, timeout=10).status_code == 202
    time.sleep(1.5)
    after = {name: accepted_records(name) for name in stack.API_NODES}
    # both took a share through the upstream, and one scrape of each counts all 40
    assert all(after[name] > before[name] for name in stack.API_NODES), (before, after)
    assert sum(after.values()) - sum(before.values()) == 40, (before, after)


def test_poison_job_ends_in_the_dead_letter_queue():
    before = queue("jobs.resize.dead")[0]
    r = requests.post(
        f"{INGRESS}/v1/functions/resize/jobs", json={"not": "an image"}, headers=AUTH, verify=False, timeout=10
    )
    assert r.status_code == 202
    # staging: max_retries 3, retry_delay_ms 5000 (the contract's defaults)
    wait_for(lambda: queue("jobs.resize.dead")[0] == before + 1, timeout=90)


def dead_letter(queue_name: str, job_id: str) -> dict:
    """The headers of a job in a dead-letter queue (looked at, left there)."""
    conn = pika.BlockingConnection(stack.amqp_admin_params())
    try:
        ch = conn.channel()
        while True:
            method, props, _ = ch.basic_get(queue_name)  # unacked: back in the queue on close
            assert method is not None, f"{job_id} not in {queue_name}"
            if props.message_id == job_id:
                return props.headers or {}
    finally:
        conn.close()


def test_resize_reads_only_its_input_directory(host):
    """Staging's resize may read /srv/hurtig/in, mounted read-only into its containers at the
    same path: a thumbnail of a file there. A job naming any other path is dead-lettered at
    once (no retries) with the reason."""
    image = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(image, format="PNG")
    host.run_test(f"echo {base64.b64encode(image.getvalue()).decode()} | base64 -d > /srv/hurtig/in/teal.png")
    assert host.check_output("docker exec hurtig-resize-1 printenv HURTIG_INPUT_DIRS") == "/srv/hurtig/in"
    assert host.run("docker exec hurtig-resize-1 touch /srv/hurtig/in/x").rc != 0  # read-only

    def post(source: str) -> str:
        body = {"source": source, "width": 16, "height": 16}
        r = requests.post(f"{INGRESS}/v1/functions/resize/jobs", json=body, headers=AUTH, verify=False, timeout=10)
        assert r.status_code == 202, r.text
        return r.json()["job_id"]

    job = post("/srv/hurtig/in/teal.png")
    wait_for(lambda: host.file(f"/var/lib/hurtig/output/{job}.png").exists, timeout=30)
    before = queue("jobs.resize.dead")[0]
    escape = post("/srv/hurtig/in/../../../etc/passwd")
    wait_for(lambda: queue("jobs.resize.dead")[0] == before + 1, timeout=10)  # a retry would wait 5 s x 3
    reason = dead_letter("jobs.resize.dead", escape)["x-hurtig-dead-reason"]
    assert reason == "rejected", reason


def test_unknown_function_and_bad_json_are_rejected_at_the_edge():
    r = requests.post(f"{INGRESS}/v1/functions/nope/jobs", json={}, headers=AUTH, verify=False, timeout=10)
    assert r.status_code == 404
    r = requests.post(
        f"{INGRESS}/v1/functions/record/jobs",
        data=b"{nope",
        headers={"Content-Type": "application/json"} | AUTH,
        verify=False,
        timeout=10,
    )
    assert r.status_code == 400


def test_only_a_client_with_a_key_for_the_function_may_submit():
    """Through the ingress: 401 without a valid key, 403 outside the key's functions, 202
    inside; staging's vault holds only the keys' hashes."""

    def post(function: str, headers: dict[str, str]) -> requests.Response:
        url = f"{INGRESS}/v1/functions/{function}/jobs"
        return requests.post(url, json={}, headers=headers, verify=False, timeout=10)

    for headers, challenge in (
        ({}, 'Bearer realm="hurtig"'),
        ({"Authorization": "Bearer not-a-key-of-this-stack-0123"}, 'Bearer realm="hurtig", error="invalid_token"'),
    ):
        r = post("sleep", headers)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized", r.text
        assert r.headers["WWW-Authenticate"] == challenge
        assert r.headers["Content-Type"].startswith("application/problem+json")
    record_only = stack.auth("example-record")
    r = post("sleep", record_only)
    assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text
    assert post("record", record_only).status_code == 202
    assert post("sleep", AUTH).status_code == 202
    assert stack.api_key() not in r.text
    for name in stack.API_NODES:  # the API nodes hold only hashes
        keys = stack.node(name, "cat", "/etc/hurtig/api/api-keys.json")
        assert stack.api_key() not in keys and stack.api_key("example-record") not in keys


def test_the_ingress_serves_only_the_public_paths():
    doc = requests.get(f"{INGRESS}/openapi.json", verify=False, timeout=10).json()
    assert doc["paths"]["/v1/functions/{name}/jobs"]["post"]["security"] == [{"apiKey": []}]
    for path in ("/readyz", "/metrics"):  # the monitoring networks only: staging names none
        assert requests.get(f"{INGRESS}{path}", verify=False, timeout=10).status_code == 403, path
    r = requests.get(f"{INGRESS}/admin", verify=False, timeout=10)
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_the_three_brokers_are_one_cluster_and_each_job_queue_lives_on_all_three():
    nodes = sorted(f"rabbit@{b}" for b in stack.BROKERS)
    for broker in stack.BROKERS:
        status = json.loads(stack.node(broker, "rabbitmqctl", "cluster_status", "--formatter", "json"))
        assert sorted(status["running_nodes"]) == nodes, broker
    out = stack.node(stack.BROKER, "rabbitmqctl", "-q", "list_queues", "-p", "hurtig", "name", "type", "members",
                     "--formatter", "json")  # fmt: skip
    queues = {q["name"]: q for q in json.loads(out)}
    for name in ("record", "resize", "sleep", "burst"):
        for suffix in ("", ".retry", ".dead"):
            q = queues[f"jobs.{name}{suffix}"]
            assert q["type"] == "quorum" and sorted(q["members"]) == nodes, q


def test_every_api_and_worker_connection_is_amqps_with_a_node_certificate_of_the_ca():
    """The jobs of the tests above flowed over these connections: TLS end to end."""
    users, subjects = set(), set()
    for broker in stack.BROKERS:
        out = stack.node(broker, "rabbitmqctl", "-q", "list_connections", "user", "port", "ssl", "ssl_protocol",
                         "peer_cert_subject", "peer_cert_issuer", "--formatter", "json")  # fmt: skip
        for c in json.loads(out):
            assert c["ssl"] is True and c["port"] == 5671 and c["ssl_protocol"] in ("tlsv1.3", "tlsv1.2"), c
            assert c["peer_cert_issuer"] == "CN=hurtig CA", c
            users.add(c["user"])
            subjects.add(c["peer_cert_subject"])
    assert {"hurtig-api", "hurtig-worker-record", "hurtig-worker-resize", "hurtig-worker-sleep"} <= users
    assert {f"CN={n}" for n in (*stack.API_NODES, stack.WORKER)} <= subjects


def test_each_function_has_its_own_broker_user_and_sees_only_its_password(host):
    out = stack.node(stack.BROKER, "rabbitmqctl", "-q", "list_users", "--formatter", "json")
    users = sorted(u["user"] for u in json.loads(out))
    assert users == sorted(
        ["hurtig-admin", "hurtig-api", "hurtig-autoscaler", "hurtig-monitoring"]
        + [f"hurtig-worker-{f}" for f in ("burst", "record", "resize", "sleep")]
    )
    assert host.check_output("docker exec hurtig-record-1 ls /run/secrets/hurtig") == "amqp.password"
    connections = json.loads(
        stack.node(stack.BROKER, "rabbitmqctl", "-q", "list_connections", "user", "--formatter", "json")
    )
    assert {"hurtig-worker-record", "hurtig-worker-sleep"} <= {c["user"] for c in connections}
