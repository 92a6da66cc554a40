"""The rabbitmq role's filters, against a real RabbitMQ: password hashes as the broker stores
them, and the jobs topology imported and compared as the role does."""

from __future__ import annotations

import json
import subprocess
import uuid

import pika
from conftest import DEAD, JOBS, RETRY, role_plugin

users = role_plugin("rabbitmq", "filter_plugins", "rabbitmq_users")
topology = role_plugin("rabbitmq", "filter_plugins", "rabbitmq_topology")


def export(broker) -> dict:
    return json.loads(broker.rabbitmqctl("export_definitions", "-"))


def vhost_definitions(broker) -> dict:
    defs = export(broker)
    kinds = ("exchanges", "queues", "bindings")
    return {k: [x for x in defs.get(k, []) if x.get("vhost") == broker.vhost] for k in kinds}


def import_definitions(broker, doc: dict) -> None:
    glob = {k: [dict(x, vhost=broker.vhost) for x in v] for k, v in doc.items()}
    subprocess.run(
        ["docker", "exec", "-i", broker.container, "sh", "-c",
         "cat > /tmp/defs.json && rabbitmqctl -q import_definitions /tmp/defs.json"],
        input=json.dumps(glob), text=True, check=True, capture_output=True,
    )  # fmt: skip


def test_password_hashes_as_the_broker_stores_them(broker):
    name = f"u{uuid.uuid4().hex[:8]}"
    broker.rabbitmqctl("add_user", name, "s3cret pw")
    stored = {u["name"]: u for u in export(broker)["users"]}[name]
    assert users.rabbitmq_password_matches("s3cret pw", stored["password_hash"], stored["hashing_algorithm"])
    assert not users.rabbitmq_password_matches("s3cret", stored["password_hash"], stored["hashing_algorithm"])
    assert not users.rabbitmq_password_matches("s3cret pw", "not base64!", stored["hashing_algorithm"])

    existing = export(broker)["users"]
    same = {"user": name, "password": "s3cret pw", "tags": ""}
    assert users.rabbitmq_users_to_update([same], existing) == []
    for changed in ({**same, "password": "new"}, {**same, "tags": "monitoring"}, {**same, "user": name + "x"}):
        assert users.rabbitmq_users_to_update([changed], existing) == [changed]


def test_permissions_that_differ(broker):
    perms = export(broker)["permissions"]
    api = {"user": "api", "configure": "^$", "write": f"^{JOBS}$", "read": "^$"}
    assert users.rabbitmq_permissions_to_update([api], perms, broker.vhost) == []
    wider = {**api, "read": ".*"}
    assert users.rabbitmq_permissions_to_update([wider], perms, broker.vhost) == [wider]
    assert users.rabbitmq_permissions_to_update([api], perms, "other-vhost") == [api]


def test_the_topology_imports_routes_jobs_and_compares(broker, function_name):
    fn = {"name": function_name, "queue": f"jobs.{function_name}", "queue_type": "quorum",
          "delivery_limit": 20, "retry_delay_ms": 200}  # fmt: skip
    wanted = topology.rabbitmq_topology([fn], JOBS, RETRY, DEAD)
    missing = topology.rabbitmq_topology_missing(wanted, vhost_definitions(broker))
    assert {q["name"] for q in missing["queues"]} == {fn["queue"], fn["queue"] + ".retry", fn["queue"] + ".dead"}
    assert len(missing["bindings"]) == 3

    import_definitions(broker, missing)
    now = vhost_definitions(broker)
    assert topology.rabbitmq_topology_missing(wanted, now) == {"exchanges": [], "queues": [], "bindings": []}
    assert topology.rabbitmq_topology_mismatches(wanted, now) == []

    conn = broker.connect("api", "api-pw")
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish(JOBS, function_name, b"{}", pika.BasicProperties(delivery_mode=2), mandatory=True)
    conn.close()
    assert broker.count(fn["queue"]) == 1

    changed = topology.rabbitmq_topology([{**fn, "delivery_limit": 25}], JOBS, RETRY, DEAD)
    assert topology.rabbitmq_topology_mismatches(changed, now) == [
        f"queue {fn['queue']}: argument x-delivery-limit is 20 on the broker but 25 in the functions list"
    ]
