"""The broker, checked from outside with a real AMQP client (pika) on 127.0.0.1:25670."""

from __future__ import annotations

import json
import ssl
import sys
import time
import uuid
from functools import cache
from pathlib import Path

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, ProbableAuthenticationError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from helpers import broker_password, drain_queue, tls_files, tls_options

testinfra_hosts = ["ansible://rabbitmq-1"]

PORT = 25670  # the node's AMQPS port, 5671
VHOST = "hurtig"
NODE = "rabbitmq-1"
USERS = {
    "admin": ("hurtig-admin", "test-admin-pw"),
    "api": ("hurtig-api", "test-api-pw"),
    # each function's own broker user
    "worker": ("hurtig-worker-sleep", broker_password("test-worker-pw", "hurtig-worker-sleep")),
    "resize-worker": ("hurtig-worker-resize", broker_password("test-worker-pw", "hurtig-worker-resize")),
}


def drain(queue: str, role: str = "worker") -> list[str]:
    return drain_queue(connect(role), queue)


@cache
def files() -> Path:
    return tls_files(NODE, "/etc/rabbitmq/tls")


def tls(**kwargs: bool) -> pika.SSLOptions:
    """A client of this deployment's CA (the broker node's own client certificate)."""
    return tls_options(files(), server_hostname=NODE, **kwargs)


def connect(
    role: str,
    user: str | None = None,
    password: str | None = None,
    ssl_options: pika.SSLOptions | None = None,
    attempts: int = 30,
) -> pika.BlockingConnection:
    if role in USERS:
        user, password = USERS[role]
    params = pika.ConnectionParameters(
        host="127.0.0.1",
        port=PORT,
        virtual_host=VHOST,
        credentials=pika.PlainCredentials(user, password),
        connection_attempts=attempts,
        retry_delay=1,
        ssl_options=ssl_options or tls(),
    )
    return pika.BlockingConnection(params)


def wait_running(host) -> None:
    for _ in range(60):
        if host.run("rabbitmq-diagnostics -q check_running").rc == 0:
            # the AMQP listener answers
            try:
                connect("admin").close()
                return
            except Exception:  # any failure means: not yet
                pass
        time.sleep(1)
    pytest.fail("broker did not come back within 60 s")


def purge(queue: str) -> None:
    conn = connect("admin")
    conn.channel().queue_purge(queue)
    conn.close()


def count(queue: str) -> int:
    conn = connect("admin")
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def publish(n: int, routing_key: str = "sleep") -> list[str]:
    conn = connect("api")
    ch = conn.channel()
    ch.confirm_delivery()
    ids = []
    for _ in range(n):
        job_id = str(uuid.uuid4())
        ch.basic_publish(
            "hurtig.jobs",
            routing_key,
            b'{"job_id": "%s"}' % job_id.encode(),
            pika.BasicProperties(delivery_mode=2, message_id=job_id, content_type="application/json"),
            mandatory=True,
        )
        ids.append(job_id)
    conn.close()
    return ids


def test_data_directory_is_on_the_data_volume(host):
    mount = host.mount_point("/var/lib/rabbitmq")
    assert mount.exists
    assert mount.device == "/dev/vdb"
    assert host.file("/var/lib/rabbitmq/mnesia").is_directory
    assert host.file("/var/lib/rabbitmq/.erlang.cookie").mode == 0o400


def test_listeners(host):
    addr = host.check_output("hostname -I").split()[0]
    assert host.socket(f"tcp://{addr}:5671").is_listening
    assert not host.socket("tcp://0.0.0.0:5671").is_listening
    # with TLS on, no plaintext AMQP at all
    assert not host.socket(f"tcp://{addr}:5672").is_listening
    assert not host.socket("tcp://0.0.0.0:5672").is_listening
    # epmd (and its loopback) and Erlang distribution on the node's address only
    for port in (4369, 25672):
        assert host.socket(f"tcp://{addr}:{port}").is_listening, port
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, port
        assert not host.socket(f"tcp://:::{port}").is_listening, port
    assert host.socket("tcp://127.0.0.1:4369").is_listening
    assert host.socket("tcp://127.0.0.1:15672").is_listening
    assert host.socket(f"tcp://{addr}:15692").is_listening


def test_config_is_production_sized(host):
    conf = host.file("/etc/rabbitmq/rabbitmq.conf").content_string
    assert "vm_memory_high_watermark.relative = 0.6" in conf
    assert "cluster_partition_handling = pause_minority" in conf
    assert "no_such_setting" not in conf  # the refused value never reached the file
    assert host.check_output("systemctl show -p LimitNOFILE --value rabbitmq-server") == "65536"
    # Effective limit: the unit's, capped by what PID 1 may hand out (raising that needs
    # CAP_SYS_RESOURCE, which this container host lacks; 20000 here).
    pid1_hard = int(host.check_output("awk '/Max open files/ {print $5}' /proc/1/limits"))
    beam = host.check_output("awk '/Max open files/ {print $4}' /proc/$(pgrep -x beam.smp)/limits")
    assert int(beam) == min(65536, pid1_hard)


def test_a_client_template_extends_rabbitmq_conf(host):
    # rabbitmq_conf_template names templates/example-client/rabbitmq-stats.conf.j2: the
    # role's rabbitmq.conf included unchanged, plus a setting the running broker took
    conf = host.file("/etc/rabbitmq/rabbitmq.conf").content_string
    assert "collect_statistics_interval = 10000" in conf and "listeners.tcp = none" in conf
    env = host.check_output("rabbitmqctl -q eval 'application:get_env(rabbit, collect_statistics_interval).'")
    assert env == "{ok,10000}"


def test_prometheus_metrics(host):
    addr = host.check_output("hostname -I").split()[0]
    out = host.check_output(
        'python3 -c "import urllib.request as u; '
        f"b = u.urlopen('http://{addr}:15692/metrics').read().decode(); "
        "print([m for m in ('rabbitmq_queues', 'rabbitmq_connections') if m in b])\""
    )
    assert out == "['rabbitmq_queues', 'rabbitmq_connections']"


def test_the_broker_presents_a_certificate_of_the_ca_for_its_name_and_address(host):
    addr = host.check_output("hostname -I").split()[0]
    for name in (NODE, addr):  # both names the clients may use
        connect("admin", ssl_options=tls_options(files(), server_hostname=name)).close()
    with pytest.raises(ssl.SSLCertVerificationError):  # a name that is not in it
        connect("admin", ssl_options=tls_options(files(), server_hostname="elsewhere.example"), attempts=1)


def test_a_client_without_a_certificate_of_the_ca_is_refused():
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        connect("admin", ssl_options=tls(client_cert=False), attempts=1)


def test_a_client_without_the_ca_refuses_the_broker():
    with pytest.raises(ssl.SSLCertVerificationError):
        connect("admin", ssl_options=tls_options(None, server_hostname=NODE), attempts=1)


def test_distribution_and_the_cli_tools_go_over_tls(host):
    # the distribution port presents the node's certificate of the CA ...
    hello = (
        "import ssl, socket; c = ssl.create_default_context(cafile='/etc/rabbitmq/tls/ca.pem'); "
        f"s = c.wrap_socket(socket.create_connection(('{NODE}', 25672), 10), server_hostname='{NODE}'); "
        "print(dict(x[0] for x in s.getpeercert()['subject'])['commonName'])"
    )
    assert host.check_output(f'python3 -c "{hello}"') == NODE
    # ... the CLI tools reach the node over TLS ...
    assert host.run("rabbitmq-diagnostics -q check_running").rc == 0
    # ... and an Erlang peer with the cookie but without TLS gets nothing
    plain = host.run(
        "runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq RABBITMQ_CTL_ERL_ARGS='-proto_dist inet_tcp'"
        " timeout 60 /usr/lib/rabbitmq/bin/rabbitmqctl -q status"
    )
    assert plain.rc != 0, plain.stdout


def test_node_key_stays_private(host):
    key = host.file("/etc/rabbitmq/tls/key.pem")
    assert (key.user, key.group, key.mode) == ("root", "rabbitmq", 0o440)
    ca_key = host.file("/etc/hurtig/pki/ca.key")
    assert (ca_key.user, ca_key.mode) == ("root", 0o600)
    assert host.file("/etc/hurtig/pki").mode == 0o700


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
