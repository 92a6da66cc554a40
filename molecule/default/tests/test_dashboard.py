"""The dashboard on the monitoring node, in headless Chromium (Debian's): every chart of a
function that had traffic, and every node chart, is drawn with data from the running
stack; the screenshot is kept in .cache/artifacts/dashboard.png. Who may see it is who
may reach Prometheus: the admin networks (test_reachability's design, port 9090)."""

from __future__ import annotations

import sys
from pathlib import Path

import requests
import urllib3
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "molecule" / "resources" / "tests"))
import dashboard  # noqa: E402
import stack  # noqa: E402
from helpers import wait_for  # noqa: E402

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

PROMETHEUS = f"http://{stack.address(stack.MONITORING)}:9090"
NODES = len({stack.INGRESS_NODE, *stack.API_NODES, *stack.BROKERS, stack.WORKER, stack.MONITORING})
ARTIFACT = ROOT / ".cache" / "artifacts" / "dashboard.png"


def scalar(expr: str) -> float:
    rows = requests.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10).json()["data"]["result"]
    return float(rows[0]["value"][1]) if rows else 0.0


def test_the_dashboard_draws_every_chart_with_data_from_the_running_stack():
    # traffic for `record`, until Prometheus has a processing rate and a latency to draw
    with requests.Session() as s:
        s.headers.update(stack.auth())
        for _ in range(30):
            r = s.post(f"{stack.INGRESS}/v1/functions/record/jobs", json={}, verify=False, timeout=10)
            assert r.status_code == 202
    processed = 'sum(rate(hurtig_worker_jobs_succeeded_total{function="record"}[1m]))'
    wait_for(lambda: scalar(processed) > 0, timeout=90, interval=3)

    state, charts = dashboard.drawn()
    assert state == "ready", state
    record = {name: v for name, v in charts.items() if name.startswith("record-")}
    nodes = {name: v for name, v in charts.items() if name.startswith("node-")}
    assert set(record) == {"record-depth", "record-rate", "record-latency", "record-consumers"}
    assert set(nodes) == {"node-cpu", "node-steal", "node-memory", "node-disk"}
    assert all(points > 0 for _, points in record.values()), record
    assert all(series == NODES and points > 0 for series, points in nodes.values()), nodes
    # one section per function of the shared list (the role wrote config.json from it)
    assert {name.rsplit("-", 1)[0] for name in charts if not name.startswith("node-")} >= {"record", "resize", "sleep"}

    shot = dashboard.screenshot(ARTIFACT)
    with Image.open(shot) as image:
        assert image.size == (1400, 2000)
        assert len(set(image.convert("RGB").resize((140, 200)).getdata())) > 20  # drawn, not blank
    print(f"dashboard screenshot: {shot}")
