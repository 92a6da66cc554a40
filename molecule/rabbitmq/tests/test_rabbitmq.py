"""The broker node, checked from outside with a real AMQP client (pika) on 127.0.0.1:25670:
its data volume, listeners, configuration, metrics and TLS (users and queues:
test_rabbitmq_users_and_queues.py)."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import pika
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from helpers import tls_options
from rabbitmq_client import NODE, connect, files, tls

testinfra_hosts = ["ansible://rabbitmq-1"]


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
