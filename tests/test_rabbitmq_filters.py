"""The rabbitmq role's filters, against a real RabbitMQ: password hashes as the broker stores
them, and the jobs topology imported and compared as the role does."""

from __future__ import annotations

import json
import subprocess
import uuid

import pika
import pytest
from conftest import DEAD, JOBS, RETRY, load_plugin

users = load_plugin("filter", "rabbitmq_users")
topology = load_plugin("filter", "rabbitmq_topology")


def export(broker) -> dict:
    return json.loads(broker.rabbitmqctl("export_definitions", "-"))


def vhost_definitions(broker) -> dict:
    defs = export(broker)
    kinds = ("exchanges", "queues", "bindings", "policies")
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
          "delivery_limit": 20, "retry_delay_ms": 200, "max_ready": 2, "max_ready_bytes": 1 << 20}  # fmt: skip
    wanted = topology.rabbitmq_topology([fn], JOBS, RETRY, DEAD)
    missing = topology.rabbitmq_topology_missing(wanted, vhost_definitions(broker))
    assert {q["name"] for q in missing["queues"]} == {fn["queue"], fn["queue"] + ".retry", fn["queue"] + ".dead"}
    assert len(missing["bindings"]) == 3
    assert [p["name"] for p in missing["policies"]] == [f"hurtig-bounds-{function_name}"]

    import_definitions(broker, missing)
    now = vhost_definitions(broker)
    nothing = {"exchanges": [], "queues": [], "bindings": [], "policies": []}
    assert topology.rabbitmq_topology_missing(wanted, now) == nothing
    assert topology.rabbitmq_topology_mismatches(wanted, now) == []

    # the bounds policy applies to the job queue: a quorum queue refuses (nacks) jobs once it
    # holds more than max_ready (2): the first three are confirmed, then every one is refused
    conn = broker.connect("api", "api-pw")
    ch = conn.channel()
    ch.confirm_delivery()
    for _ in range(3):
        ch.basic_publish(JOBS, function_name, b"{}", pika.BasicProperties(delivery_mode=2), mandatory=True)
    for _ in range(2):
        with pytest.raises(pika.exceptions.NackError):
            ch.basic_publish(JOBS, function_name, b"{}", pika.BasicProperties(delivery_mode=2), mandatory=True)
    conn.close()
    assert broker.count(fn["queue"]) == 3

    # a bound is mutable: a changed one is imported again and replaces the policy
    wider = topology.rabbitmq_topology([{**fn, "max_ready": 3}], JOBS, RETRY, DEAD)
    again = topology.rabbitmq_topology_missing(wider, now)
    assert [p["definition"]["max-length"] for p in again["policies"]] == [3]
    import_definitions(broker, again)
    assert topology.rabbitmq_topology_missing(wider, vhost_definitions(broker)) == nothing

    changed = topology.rabbitmq_topology([{**fn, "delivery_limit": 25}], JOBS, RETRY, DEAD)
    assert topology.rabbitmq_topology_mismatches(changed, now) == [
        f"queue {fn['queue']}: argument x-delivery-limit is 20 on the broker but 25 in the functions list"
    ]


broker_users = load_plugin("filter", "hurtig_broker_users")


def test_function_users_are_confined_to_their_own_queues_and_routes(broker):
    a, b = (f"f{uuid.uuid4().hex[:8]}" for _ in range(2))
    fns = [{"name": n, "queue": broker.declare_function(n), "broker_user": f"u-{n}"} for n in (a, b)]
    desired = users.rabbitmq_function_permissions(broker_users.hurtig_function_users(fns, "s3cret"), RETRY, DEAD)
    assert [u["user"] for u in desired] == sorted([f"u-{a}", f"u-{b}"])
    for u in desired:  # what the role writes through the management API, here with the CLI
        broker.rabbitmqctl("add_user", u["user"], u["password"])
        broker.rabbitmqctl("set_permissions", "-p", broker.vhost, u["user"], u["configure"], u["write"], u["read"])
        for t in u["topic"]:
            broker.rabbitmqctl(
                "set_topic_permissions", "-p", broker.vhost, u["user"], t["exchange"], t["write"], t["read"]
            )
    existing = export(broker)
    assert users.rabbitmq_topic_permissions_to_update(desired, existing["topic_permissions"], broker.vhost) == []
    assert users.rabbitmq_permissions_to_update(desired, existing["permissions"], broker.vhost) == []
    assert users.rabbitmq_users_to_delete(desired, existing["users"], ["worker"]) == ["worker"]

    user_a = next(u for u in desired if u["user"] == f"u-{a}")
    conn = broker.connect(user_a["user"], user_a["password"])
    ch = conn.channel()
    ch.confirm_delivery()
    for exchange in (RETRY, DEAD):  # its own routes
        ch.basic_publish(exchange, a, b"{}", pika.BasicProperties(delivery_mode=2), mandatory=True)
    assert ch.basic_get(f"jobs.{a}")[0] is None  # its own queue: allowed (empty)
    conn.close()
    for attempt in ("consume", RETRY, DEAD):  # everything of the other function: refused
        conn = broker.connect(user_a["user"], user_a["password"])
        ch = conn.channel()
        ch.confirm_delivery()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
            if attempt == "consume":
                ch.basic_get(f"jobs.{b}")
            else:
                ch.basic_publish(attempt, b, b"{}", pika.BasicProperties(delivery_mode=2), mandatory=True)
        assert err.value.reply_code == 403, attempt
        conn.close()
    assert broker.count(f"jobs.{a}.dead") == 1 and broker.count(f"jobs.{b}.dead") == 0


def test_derived_passwords_differ_per_user_and_secret():
    p = broker_users.hurtig_broker_password
    assert p("s", "u1") == p("s", "u1") and len(p("s", "u1")) == 43
    assert len({p("s", "u1"), p("s", "u2"), p("t", "u1")}) == 3
    shared = broker_users.hurtig_function_users(
        [{"name": "a", "queue": "jobs.a", "broker_user": "x"}, {"name": "b", "queue": "jobs.b", "broker_user": "x"}],
        "s",
    )
    assert shared == [{"user": "x", "queues": ["jobs.a", "jobs.b"], "names": ["a", "b"], "password": p("s", "x")}]
    tagged = [{"name": "old", "tags": ["hurtig-function"]}, {"name": "ops", "tags": []}, {"name": "x", "tags": []}]
    assert users.rabbitmq_users_to_delete(shared, tagged) == ["old"]
