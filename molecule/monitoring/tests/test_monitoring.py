"""The monitoring node: Prometheus scrapes the broker per queue with each queue's function,
the alert rules pass their promtool tests where they are served, and a dead-lettered job
and a function without consumers reach Alertmanager."""

from __future__ import annotations

import sys
from pathlib import Path

import pika
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from helpers import run_playbook, tls_files, tls_options, wait_for

testinfra_hosts = ["ansible://mon-m"]

HERE = Path(__file__).resolve().parent
PROMETHEUS = "http://127.0.0.1:29090"
ALERTMANAGER = "http://127.0.0.1:29093"


def query(expr: str) -> list[dict]:
    r = requests.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10)
    r.raise_for_status()
    return r.json()["data"]["result"]


def admin() -> pika.ConnectionParameters:
    """AMQPS to the broker as its administrator, a client of the deployment's CA."""
    params = pika.URLParameters("amqps://hurtig-admin:test-admin-pw@127.0.0.1:25694/hurtig")
    params.ssl_options = tls_options(tls_files("broker-m", "/etc/rabbitmq/tls"), server_hostname="broker-m")
    return params


def test_the_alert_rules_pass_their_promtool_tests_where_they_are_served(host):
    host.ansible(
        "ansible.builtin.copy",
        f"src={HERE / 'alerts.promtool.yml'} dest=/tmp/hurtig-alerts.test.yml mode=0644",
        check=False,
    )
    tests = (HERE / "alerts.promtool.yml").read_text()
    out = host.run("promtool test rules /tmp/hurtig-alerts.test.yml")
    assert out.rc == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr
    # and the served rules are the ones tested: Prometheus loaded every alert of the file
    r = requests.get(f"{PROMETHEUS}/api/v1/rules", timeout=10).json()["data"]["groups"]
    served = {rule["name"] for group in r for rule in group["rules"]}
    tested = {line.split(":", 1)[1].strip() for line in tests.splitlines() if line.strip().startswith("alertname:")}
    assert served == tested, (served, tested)


def test_prometheus_and_alertmanager_listen_on_the_private_address_only(host):
    address = host.check_output("hostname -I").split()[0]  # the converge's private_address
    listening = host.check_output("ss -Hltn").split("\n")
    local = {row.split()[3] for row in listening}
    assert f"{address}:9090" in local and f"{address}:9093" in local
    assert not any(a.endswith((":9090", ":9093", ":9094")) and not a.startswith(address) for a in local), local
    assert host.service("prometheus").is_enabled and host.service("prometheus-alertmanager").is_enabled


def test_every_queue_of_a_function_is_scraped_with_its_function_and_kind():
    def scraped() -> bool:
        return len(query('rabbitmq_detailed_queue_messages_ready{function="sleep"}')) == 3

    wait_for(scraped, timeout=90, interval=3)
    rows = query('rabbitmq_detailed_queue_messages_ready{function="sleep"}')
    kinds = {r["metric"]["queue"]: r["metric"]["queue_kind"] for r in rows}
    assert kinds == {"jobs.sleep": "main", "jobs.sleep.retry": "retry", "jobs.sleep.dead": "dead"}
    [alarm] = query("rabbitmq_alarms_memory_used_watermark")
    assert alarm["metric"]["node"] == "broker-m" and alarm["value"][1] == "0"
    targets = requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    up = {t["labels"]["job"] for t in targets if t["health"] == "up"}
    assert up >= {"rabbitmq", "rabbitmq-queues", "prometheus", "alertmanager"}, targets


def test_every_node_exporter_is_scraped_on_its_private_address_with_cpu_steal(host):
    def scraped() -> bool:
        return {r["metric"]["node"] for r in query('node_cpu_seconds_total{mode="steal"}')} == {"broker-m", "mon-m"}

    wait_for(scraped, timeout=90, interval=3)
    targets = requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    node = {t["labels"]["node"]: (t["health"], t["scrapeUrl"]) for t in targets if t["labels"]["job"] == "node"}
    assert set(node) == {"broker-m", "mon-m"} and all(h == "up" for h, _ in node.values()), node
    address = host.check_output("hostname -I").split()[0]
    assert node["mon-m"][1] == f"http://{address}:9100/metrics"
    local = {row.split()[3] for row in host.check_output("ss -Hltn").split("\n")}
    assert f"{address}:9100" in local and not any(a.endswith(":9100") and a != f"{address}:9100" for a in local)
    # the blackbox exporter (the ingress probe) answers the loopback only
    assert "127.0.0.1:9115" in local and not any(a.endswith(":9115") and a != "127.0.0.1:9115" for a in local)


def alerts() -> dict[str, list[dict]]:
    r = requests.get(f"{ALERTMANAGER}/api/v2/alerts", timeout=10)
    r.raise_for_status()
    found: dict[str, list[dict]] = {}
    for alert in r.json():
        found.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
    return found


def test_a_dead_lettered_job_and_a_function_without_consumers_reach_alertmanager():
    conn = pika.BlockingConnection(admin())
    ch = conn.channel()
    ch.confirm_delivery()
    props = pika.BasicProperties(delivery_mode=2, headers={"x-hurtig-error": "test"})
    ch.basic_publish("", "jobs.sleep.dead", b'{"payload": {}}', props)  # as a worker dead-letters it
    ch.basic_publish("", "jobs.sleep", b'{"payload": {}}', props)  # and no worker runs here
    conn.close()
    try:
        wait_for(lambda: {"HurtigDeadLetters", "HurtigNoConsumers"} <= set(alerts()), timeout=180, interval=5)
        found = alerts()
        [dead] = found["HurtigDeadLetters"]
        assert (dead["function"], dead["queue"], dead["severity"]) == ("sleep", "jobs.sleep.dead", "warning")
        [idle] = found["HurtigNoConsumers"]
        assert (idle["function"], idle["queue"], idle["severity"]) == ("sleep", "jobs.sleep", "critical")
    finally:
        conn = pika.BlockingConnection(admin())
        ch = conn.channel()
        ch.queue_purge("jobs.sleep.dead")
        ch.queue_purge("jobs.sleep")
        conn.close()


@pytest.mark.parametrize(
    ("setting", "refused_by"),
    [
        ("monitoring_scrape_interval=fifteen", "prometheus.yml"),
        ("monitoring_alert_backlog_for='a minute'", "alert rules"),
    ],
)
def test_a_broken_value_never_goes_live(host, setting, refused_by):
    live = ("/etc/prometheus/prometheus.yml", "/etc/prometheus/rules/hurtig.yml")
    before = [host.file(path).content_string for path in live]
    out = run_playbook(Path(__file__).resolve().parents[1] / "converge.yml", "--limit", "mon-m", "-e", setting)
    assert out.returncode != 0
    said = out.stdout + out.stderr
    assert "failed to validate" in said and refused_by in said, said[-3000:]
    assert [host.file(path).content_string for path in live] == before
    assert requests.get(f"{PROMETHEUS}/-/ready", timeout=5).status_code == 200
