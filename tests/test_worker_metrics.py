"""The workers' metrics against a real RabbitMQ: every outcome counted once, counters that
carry on across a container's restart, one node view over its containers, and the
endpoint the monitoring node scrapes."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from test_worker import publish, running, settings, wait_until

from hurtig import jobs
from hurtig.handler import JobContext
from hurtig.metrics import Histogram
from hurtig.worker import Worker
from hurtig.worker_metrics import read_all, render, serve


def values(text: str, fn: str) -> dict[str, float]:
    """metric name (with le for buckets) -> value, for one function."""
    out = {}
    for name, labels, value in re.findall(r"^(\w+)\{([^}]*)\} (\S+)$", text, re.M):
        if f'function="{fn}"' in labels:
            le = re.search(r'le="([^"]+)"', labels)
            out[f"{name}[{le.group(1)}]" if le else name] = float(value)
    return out


def test_every_outcome_is_counted_once_and_carries_on_after_a_restart(broker, function_name, tmp_path):
    queue = broker.declare_function(function_name, retry_delay_ms=100)

    def handler(payload: Any, job: JobContext) -> None:
        if payload.get("fail"):
            raise RuntimeError("boom")
        if payload.get("reject"):
            raise jobs.Rejected("never")
        time.sleep(0.3)

    publish(broker, function_name, n=5)
    publish(broker, function_name, payload={"fail": True})  # tried 3 times, then dead-lettered
    publish(broker, function_name, payload={"reject": True})  # dead-lettered at once
    publish(broker, function_name, body=b"not json")  # never a job: dead-lettered, not started
    s = settings(broker, function_name, max_retries=2, metrics_dir=str(tmp_path), metrics_name="w-1")
    with running(Worker(s, handler)):
        wait_until(lambda: broker.count(f"{queue}.dead") == 3 and broker.count(queue) == 0)
    got = values(render(read_all(tmp_path)), function_name)
    assert got["hurtig_worker_jobs_started_total"] == 5 + 3 + 1
    assert got["hurtig_worker_jobs_succeeded_total"] == 5
    assert got["hurtig_worker_jobs_failed_total"] == 3 + 1
    assert got["hurtig_worker_jobs_retried_total"] == 2
    assert got["hurtig_worker_jobs_dead_lettered_total"] == 3
    assert got["hurtig_worker_handler_seconds_count"] == 5 + 3 + 1 == got["hurtig_worker_handler_seconds_bucket[+Inf]"]
    assert got["hurtig_worker_handler_seconds_bucket[0.25]"] == 4  # the failures; each success took 0.3 s
    assert got["hurtig_worker_jobs_in_flight"] == 0  # written when it stopped

    # the same container again (a restart): it counts on from its file
    publish(broker, function_name, n=2)
    with running(Worker(s, handler)):
        wait_until(lambda: broker.count(queue) == 0)
        time.sleep(1.2)
    again = values(render(read_all(tmp_path)), function_name)
    assert again["hurtig_worker_jobs_succeeded_total"] == 7
    assert again["hurtig_worker_jobs_started_total"] == 11
    assert [p.name for p in tmp_path.iterdir()] == ["w-1.json"]


def test_the_node_view_sums_containers_and_counts_only_live_ones_in_flight(tmp_path: Path):
    now = time.time()
    snap = {"function": "a", "buckets": [0] * 13, "sum": 1.5, "count": 3}
    files = {
        "a-1": {**snap, "at": now, "counts": {"started": 3, "succeeded": 2}, "in_flight": 1},
        "a-2": {**snap, "at": now - 60, "counts": {"started": 4, "succeeded": 4}, "in_flight": 2},  # stopped
        "b-1": {**snap, "function": "b", "at": now, "counts": {"started": 1}, "in_flight": 1},
    }
    for name, data in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    (tmp_path / ".a-3.json.tmp").write_text("{half")  # a write in progress is not read
    (tmp_path / "broken.json").write_text("{")
    text = render(read_all(tmp_path))
    a, b = values(text, "a"), values(text, "b")
    assert (a["hurtig_worker_jobs_started_total"], a["hurtig_worker_jobs_succeeded_total"]) == (7, 6)
    assert (a["hurtig_worker_jobs_in_flight"], a["hurtig_worker_containers"]) == (1, 1)
    assert a["hurtig_worker_handler_seconds_sum"] == 3.0 and a["hurtig_worker_handler_seconds_count"] == 6
    assert (b["hurtig_worker_jobs_started_total"], b["hurtig_worker_jobs_failed_total"]) == (1, 0)


def test_the_endpoint_serves_the_directory_and_nothing_else(tmp_path: Path):
    snap = {"function": "a", "buckets": [0] * 13, "sum": 0, "count": 0, "in_flight": 0, "at": time.time()}
    (tmp_path / "a-1.json").write_text(json.dumps({**snap, "counts": {"started": 2}}))
    server = serve(tmp_path, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert values(r.read().decode(), "a")["hurtig_worker_jobs_started_total"] == 2
        try:
            urllib.request.urlopen(f"{url}/", timeout=5)
            raise AssertionError("/ answered")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    finally:
        server.shutdown()


def test_one_histogram_for_the_api_and_the_workers():
    h = Histogram((0.1, 1.0, 10.0))
    for value in (0.05, 0.1, 0.5, 1.0, 20.0):  # a value on a bound counts in that bucket
        h.observe(value)
    assert h.buckets == [2, 4, 4]
    other = Histogram((0.1, 1.0, 10.0))
    other.observe(5.0)
    h.add(other.fields())
    assert (h.buckets, h.count, round(h.total, 2)) == ([2, 4, 5], 6, 26.65)
    assert h.lines("x_seconds") == [
        'x_seconds_bucket{le="0.1"} 2',
        'x_seconds_bucket{le="1.0"} 4',
        'x_seconds_bucket{le="10.0"} 5',
        'x_seconds_bucket{le="+Inf"} 6',
        "x_seconds_sum 26.650000",
        "x_seconds_count 6",
    ]
    assert h.lines("x_seconds", 'function="f",')[3:] == [
        'x_seconds_bucket{function="f",le="+Inf"} 6',
        'x_seconds_sum{function="f"} 26.650000',
        'x_seconds_count{function="f"} 6',
    ]
