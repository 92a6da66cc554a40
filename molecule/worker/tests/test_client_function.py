"""The example client's own function (templates/example-client): its package built by the
installed collection's runtime_image role into a layer FROM the runtime image, run by the
worker role like the platform's examples, its jobs processed and its rejects dead-lettered."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pika

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from helpers import queue_state, wait_for
from test_worker_role import amqp, containers, publish_jobs

testinfra_hosts = ["ansible://worker-w"]

ROOT = Path(__file__).resolve().parents[3]


def test_the_clients_function_runs_from_the_clients_image(host):
    assert containers(host, "greet") == ["hurtig-greet-1"]
    image = host.check_output("docker inspect -f '{{.Config.Image}}' hurtig-greet-1")
    assert image.startswith("hurtig/client:trixie-"), image
    assert host.check_output("docker inspect -f '{{.Config.Image}}' hurtig-sleep-1") == image  # one image per node
    info = json.loads(host.check_output("docker inspect hurtig-greet-1"))[0]
    assert info["Config"]["User"] == "10001:10001" and info["HostConfig"]["ReadonlyRootfs"] is True
    # the package is the client's, installed in the image; none of it is in the platform's src/
    shown = host.check_output("docker exec hurtig-greet-1 pip show acme-functions")
    assert "Name: acme-functions" in shown
    assert not list((ROOT / "src").rglob("acme_functions"))


def test_the_clients_function_processes_a_job(host):
    (job_id,) = publish_jobs("greet", [{"name": "Oslo"}])
    out = f"/var/lib/hurtig/output/greet-{job_id}"
    wait_for(lambda: host.file(out).exists, timeout=60)
    assert host.file(out).content_string == "Hello, Oslo!\n"
    wait_for(lambda: queue_state(amqp(), "jobs.greet")[0] == 0)


def test_a_job_the_client_rejects_is_dead_lettered_with_the_reason_without_a_retry(host):
    (job_id,) = publish_jobs("greet", [{"nom": "Oslo"}])
    wait_for(lambda: queue_state(amqp(), "jobs.greet.dead")[0] == 1, timeout=60)
    conn = pika.BlockingConnection(amqp())
    ch = conn.channel()
    method, props, body = ch.basic_get("jobs.greet.dead")
    assert method is not None and json.loads(body)["job_id"] == job_id
    headers = props.headers
    assert headers["x-hurtig-dead-reason"] == "rejected", headers
    assert headers["x-hurtig-error"] == "Rejected: a greeting needs a name (a non-empty string)"
    assert int(headers.get("x-hurtig-attempt", 0)) == 0  # never retried
    ch.basic_ack(method.delivery_tag)
    conn.close()
