"""The monitoring node of the shipped staging inventory (stg-mon-1) watches the converged
stack: every node's exporter, the ingress (its exporter and an HTTPS probe), the API nodes
and the brokers are scraped, jobs sent through the ingress show in Prometheus, and a job
that ends in the dead-letter queue reaches Alertmanager. The test host stands on the admin
network, which is who may reach Prometheus and Alertmanager."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import requests
import urllib3

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "molecule" / "resources" / "tests"))
import stack  # noqa: E402
from helpers import wait_for  # noqa: E402

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

PROMETHEUS = f"http://{stack.address(stack.MONITORING)}:9090"
ALERTMANAGER = f"http://{stack.address(stack.MONITORING)}:9093"
ALL_NODES = {stack.INGRESS_NODE, *stack.API_NODES, *stack.BROKERS, stack.WORKER, stack.MONITORING}
# job -> the inventory names it scrapes (roles/monitoring: every job from the inventory)
EXPECTED = {
    "node": ALL_NODES,
    "nginx": {stack.INGRESS_NODE},
    "ingress-probe": {stack.INGRESS_NODE},
    "api": set(stack.API_NODES),
    "workers": {stack.WORKER},
    "rabbitmq": set(stack.BROKERS),
    "rabbitmq-queues": set(stack.BROKERS),
    "prometheus": {stack.MONITORING},
    "alertmanager": {stack.MONITORING},
}


def query(expr: str) -> list[dict]:
    r = requests.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10)
    r.raise_for_status()
    return r.json()["data"]["result"]


def scalar(expr: str) -> float:
    rows = query(expr)
    return float(rows[0]["value"][1]) if rows else 0.0


def targets() -> dict[str, dict[str, str]]:
    """job -> {node: health} of every active target."""
    found: dict[str, dict[str, str]] = {}
    for t in requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]:
        found.setdefault(t["labels"]["job"], {})[t["labels"]["node"]] = t["health"]
    return found


def test_every_layer_of_the_stack_is_scraped_and_up():
    def all_up() -> bool:
        now = targets()
        return {job: set(nodes) for job, nodes in now.items()} == EXPECTED and all(
            health == "up" for nodes in now.values() for health in nodes.values()
        )

    wait_for(all_up, timeout=120, interval=3)
    # CPU steal of every node, the ingress's connections, its certificate as a client sees it
    assert {r["metric"]["node"] for r in query('node_cpu_seconds_total{mode="steal"}')} == ALL_NODES
    assert scalar("nginx_up") == 1 and scalar("nginx_connections_accepted") > 0
    assert scalar("probe_success") == 1
    days = (scalar("probe_ssl_earliest_cert_expiry") - time.time()) / 86400
    assert days > 14, f"the ingress certificate expires in {days:.1f} days"


def scraped_since(job: str, moment: float) -> bool:
    """Every target of the job has been scraped after the moment (a Unix time)."""
    stamps = query(f'timestamp(up{{job="{job}"}})')
    return len(stamps) == len(EXPECTED[job]) and all(float(r["value"][1]) > moment for r in stamps)


def settled_count(expr: str) -> float:
    """The API nodes' count as of a scrape taken after every job sent so far was counted:
    an API process shares its figures every second, Prometheus scrapes every 15 s. Jobs an
    earlier test sent a moment ago are in it, not in the next difference."""
    moment = time.time() + 1.5
    wait_for(lambda: scraped_since("api", moment), timeout=60, interval=2)
    return scalar(expr)


def test_jobs_sent_through_the_ingress_show_in_prometheus():
    expr = 'sum(hurtig_api_jobs_accepted_total{function="record"})'
    wait_for(lambda: len(query(expr)) == 1, timeout=60, interval=3)
    before = settled_count(expr)
    with requests.Session() as s:
        s.headers.update(stack.auth())
        for _ in range(25):
            r = s.post(f"{stack.INGRESS}/v1/functions/record/jobs", json={}, verify=False, timeout=10)
            assert r.status_code == 202
    # the next scrape of both API nodes counts exactly these 25
    assert settled_count(expr) == before + 25
    # and the worker node's scrape counts them handled: what the API accepted, the workers did
    done = 'sum(hurtig_worker_jobs_succeeded_total{function="record"})'
    wait_for(lambda: scalar(done) >= before + 25, timeout=90, interval=3)
    assert scalar('sum(hurtig_worker_handler_seconds_count{function="record"})') >= before + 25


def alerts(name: str) -> list[dict]:
    r = requests.get(f"{ALERTMANAGER}/api/v2/alerts", params={"filter": f'alertname="{name}"'}, timeout=10)
    r.raise_for_status()
    return [a["labels"] for a in r.json()]


def test_a_job_that_ends_in_the_dead_letter_queue_reaches_alertmanager():
    """A poison job through the ingress: retried, dead-lettered, alerted with its function."""
    url = f"{stack.INGRESS}/v1/functions/resize/jobs"
    r = requests.post(url, json={"not": "an image"}, headers=stack.auth(), verify=False, timeout=10)
    assert r.status_code == 202

    def alerted() -> bool:
        return any(a.get("function") == "resize" for a in alerts("HurtigDeadLetters"))

    # three retries 5 s apart, then the next scrape and rule evaluation (15 s each)
    wait_for(alerted, timeout=180, interval=5)
    [labels] = [a for a in alerts("HurtigDeadLetters") if a.get("function") == "resize"]
    assert labels["queue"] == "jobs.resize.dead" and labels["severity"] == "warning", labels
    # the worker node counted its retries and the dead letter
    assert scalar('sum(hurtig_worker_jobs_dead_lettered_total{function="resize"})') >= 1
    assert scalar('sum(hurtig_worker_jobs_retried_total{function="resize"})') >= 3
