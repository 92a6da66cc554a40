"""The broker's users (least privilege per role and per function) and its queues (durable
through a restart, retry after a delay, dead-lettering), checked with pika from outside."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, ProbableAuthenticationError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from rabbitmq_client import connect, count, drain, publish, purge, wait_running

testinfra_hosts = ["ansible://rabbitmq-1"]


def test_guest_is_refused():
    with pytest.raises(ProbableAuthenticationError):
        connect("guest", "guest", "guest")
    assert connect("admin")  # the broker itself answers


def test_api_user_cannot_consume():
    purge("jobs.sleep")
    publish(1)
    conn = connect("api")
    with pytest.raises(ChannelClosedByBroker) as err:
        conn.channel().basic_get("jobs.sleep")
    assert err.value.reply_code == 403
    conn.close()
    assert len(drain("jobs.sleep")) == 1


def test_worker_user_cannot_publish_jobs():
    conn = connect("worker")
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.basic_publish("hurtig.jobs", "sleep", b"{}", pika.BasicProperties(delivery_mode=2))
    assert err.value.reply_code == 403
    conn.close()


def test_worker_user_may_publish_to_retry_and_dead_exchanges():
    conn = connect("resize-worker")
    ch = conn.channel()
    ch.confirm_delivery()
    for exchange in ("hurtig.retry", "hurtig.dead"):
        ch.basic_publish(exchange, "resize", b"{}", pika.BasicProperties(delivery_mode=2), mandatory=True)
    conn.close()
    purge("jobs.resize.retry")
    purge("jobs.resize.dead")


def test_a_function_user_reaches_nothing_of_another_function():
    purge("jobs.resize")
    publish(1, "resize")
    for attempt in ("consume", "hurtig.retry", "hurtig.dead"):
        conn = connect("worker")  # the user of `sleep`
        ch = conn.channel()
        ch.confirm_delivery()
        with pytest.raises(ChannelClosedByBroker) as err:
            if attempt == "consume":
                ch.basic_get("jobs.resize")
            else:  # its own exchange, another function's route (topic permissions)
                ch.basic_publish(attempt, "resize", b"{}", pika.BasicProperties(delivery_mode=2), mandatory=True)
        assert err.value.reply_code == 403, attempt
        conn.close()
    assert len(drain("jobs.resize", "resize-worker")) == 1
    for queue in ("jobs.resize.retry", "jobs.resize.dead"):
        assert count(queue) == 0


def test_only_the_functions_users_exist(host):
    out = host.check_output("rabbitmqctl -q list_users --formatter json")
    assert sorted(u["user"] for u in json.loads(out)) == sorted(
        [
            "hurtig-admin",
            "hurtig-api",
            "hurtig-autoscaler",
            "hurtig-monitoring",
            "hurtig-worker-resize",
            "hurtig-worker-sleep",
        ]
    )


def test_confirmed_messages_survive_restart_and_kill(host):
    purge("jobs.sleep")
    ids = publish(200)
    assert host.run("systemctl restart rabbitmq-server").rc == 0
    wait_running(host)
    ids += publish(200)
    host.run_test("pkill -9 -x beam.smp")
    time.sleep(3)
    wait_running(host)
    got = drain("jobs.sleep")
    assert sorted(got) == sorted(ids)


def test_retry_queue_returns_jobs_after_the_delay():
    purge("jobs.sleep")
    conn = connect("worker")
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish(
        "hurtig.retry",
        "sleep",
        b"{}",
        pika.BasicProperties(delivery_mode=2, message_id="retry-me"),
        mandatory=True,
    )
    conn.close()
    deadline = time.monotonic() + 30
    got: list[str] = []
    while not got and time.monotonic() < deadline:
        time.sleep(1)
        got = drain("jobs.sleep")
    assert got == ["retry-me"]


def test_message_returned_more_than_the_delivery_limit_is_dead_lettered():
    purge("jobs.sleep")
    purge("jobs.sleep.dead")
    [job_id] = publish(1)
    conn = connect("worker")
    ch = conn.channel()
    nacks = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        method, _, _ = ch.basic_get("jobs.sleep")
        if method is None:
            if nacks > 3:
                break
            time.sleep(0.2)
            continue
        ch.basic_nack(method.delivery_tag, requeue=True)
        nacks += 1
    conn.close()
    assert nacks == 4  # delivery_limit (3) redeliveries, then the broker dead-letters it
    time.sleep(1)
    assert drain("jobs.sleep.dead", role="admin") == [job_id]
