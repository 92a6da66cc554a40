"""bench/report.py renders the committed benchmark results: a valid SVG and tables for docs/benchmarks.md."""

from __future__ import annotations

import importlib.util
import json
import sys
import xml.dom.minidom
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import cpu  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402


def test_svg_is_valid_xml_with_a_bar_per_target():
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    doc = xml.dom.minidom.parseString(report.svg(results))
    assert len(doc.getElementsByTagName("rect")) == len(results["targets"])


def test_tables_report_every_fault_and_no_loss():
    faults = json.loads((ROOT / "bench" / "faults.json").read_text())
    lines = report.faults_table(faults)
    assert sum(line.startswith("| ") and "**0**" in line for line in lines) == len(faults["faults"])
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    assert any("`ingress_ratio`" in line for line in report.table(results))


def test_cpu_table_has_a_row_per_measured_case():
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    measured = [k for k, r in results["wrk_runs"].items() if isinstance(r, dict) and "cpu_us_per_request" in r]
    rows = [line for line in report.cpu_table(results) if line.startswith("| ") and not line.startswith("| case")]
    assert len(rows) == len(measured)
    case = {"connections": 64, "rps": 3000.0, "cpu_us_per_request": dict.fromkeys(report.GROUPS, 1.0)}
    shares = {"wrk_runs": {"jobs": case | {"machine": {"busy": 0.994, "interrupts": 0.061}}, "older": case}}
    assert report.cpu_table(shares)[4].endswith("| 99% | 6% |")
    assert report.cpu_table(shares)[5].endswith("|  |  |")  # a run from before the shares: empty cells


def test_runs_combine_to_medians_with_ranges():
    runs = [{"rps": 10.0, "errors": 3, "case": {"a": 1}}, {"rps": 30.0, "errors": 1}, {"rps": 20.0, "errors": 2}]
    out = run.combine(runs)
    assert (out["rps"], out["errors"], out["runs"]) == (20.0, 2, 3)
    assert out["ranges"] == {"rps": [10.0, 30.0], "errors": [1, 3]}
    assert "case" not in out  # details are the last run's
    results = {"rps": 20.0, "ranges": {"rps": [10.0, 30.0]}}
    report.ROWS.append(("rps", "test", "req/s"))
    try:
        assert "| `rps` | test | 20 req/s (10 to 30) |  |" in report.table(results)
    finally:
        report.ROWS.pop()


def test_e2e_capacity_is_what_the_workers_process_while_the_load_runs():
    import e2e  # noqa: PLC0415 - bench/ is on the path above

    sent = [i / 100 for i in range(1001)]  # 100 jobs/s for 10 s
    kept_up = [t + 0.004 for t in sent]
    assert e2e.processed_rps(sent, kept_up) == 100.0  # the last one started 4 ms after the load: not counted
    behind = [i / 60 for i in range(1001)]  # the workers start 60 a second: a queue grows
    assert e2e.processed_rps(sent, behind) == 60.1
    assert e2e.processed_rps([5.0], [5.0]) == 0.0


def test_auth_overhead_cancels_a_drifting_rate():
    import http_cases  # noqa: PLC0415 - bench/ is on the path above

    # every run 5 % faster than the one before it, keys or not: the ratio stays 1
    rates = [100 * 1.05**i for i in range(6)]  # on0 (the jobs case), off, on, off, on, off
    on = [{"rps": rates[i]} for i in (0, 2, 4)]
    off = [{"rps": rates[i]} for i in (1, 3, 5)]
    assert abs(http_cases.bracketed_ratio(on, off) - 1) < 0.002
    # a check that costs 10 %: each run with keys at 0.9 of its neighbours
    on = [{"rps": 90.0}, {"rps": 90.0}, {"rps": 90.0}]
    off = [{"rps": 100.0}] * 3
    assert http_cases.bracketed_ratio(on, off) == 0.9


def test_many_clients_ratio_is_against_the_runs_around_it():
    import http_cases  # noqa: PLC0415

    # the 64-client rate rose by 20 % from the run before to the run after: the 4,096
    # clients' 16,500 req/s is 0.75 of their mean, not 0.825 of the first
    before, many, after = {"rps": 20_000.0}, {"rps": 16_500.0}, {"rps": 24_000.0}
    assert http_cases.around(many, before, after) == 0.75
    assert http_cases.around(many, before, before) == 0.825


def test_h2load_output_read():
    import loadgen  # noqa: PLC0415

    out = """finished in 25.35s, 6327.10 req/s, 2.01MB/s
requests: 126542 total, 126600 started, 126542 done, 126530 succeeded, 12 failed, 3 errored, 2 timeout
status codes: 126530 2xx, 0 3xx, 0 4xx, 7 5xx
traffic: 40.19MB (42138486) total, 33.58MB (35207036) headers (space savings 0.00%), 2.05MB (2150048) data
                     min         max         mean         sd        +/- sd
time for request:   253us       2.00s    660.15ms    168.70ms    75.85%
time for connect:        0us         0us         0us         0us     0.00%
"""
    n = loadgen.h2load_counts(out)
    assert (n["total"], n["succeeded"], n["failed"], n["errored"], n["timeout"]) == (126542, 126530, 12, 3, 2)
    assert (n["2xx"], n["5xx"]) == (126530, 7)
    assert (n["min_ms"], n["max_ms"], n["mean_ms"]) == (0.253, 2000.0, 660.15)


def test_nstat_output_read():
    import acks  # noqa: PLC0415

    out = """#kernel
TcpInSegs                       4153            0.0
TcpOutSegs                      4162            0.0
TcpExtDelayedACKs               7               0.0
"""
    assert acks.nstat_counts(out) == {"TcpInSegs": 4153, "TcpOutSegs": 4162, "TcpExtDelayedACKs": 7}


def test_profiles_compare_per_thousand_requests(tmp_path):
    # by path: `import profile` may find the standard library's module of that name
    spec = importlib.util.spec_from_file_location("bench_profile", ROOT / "bench" / "profile.py")
    bench_profile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_profile)
    job = tmp_path / "job.txt"
    job.write_text("run (a.py:1);handle (b.py:2);submit (c.py:3) 6\nrun (a.py:1);handle (b.py:2) 4\nrun (a.py:1) 2\n")
    healthz = tmp_path / "healthz.txt"
    healthz.write_text("run (a.py:1);handle (b.py:2) 3\n")
    a, b = bench_profile.inclusive(job, 2000), bench_profile.inclusive(healthz, 1000)
    assert a == {"(total)": 6.0, "run": 6.0, "handle": 5.0, "submit": 3.0}
    assert b["handle"] == 3.0
    lines = bench_profile.compare(a, b)
    assert lines[2].startswith("| (total) | 6.00 | 3.00 | +3.00")
    # by difference; `run`, on every stack of both, is left out
    assert [line.split(" | ")[0] for line in lines[3:]] == ["| submit", "| handle"]


def test_median_into_keeps_a_range_for_a_single_run_too():
    import medians  # noqa: PLC0415 - bench/ is on the path above

    r: dict = {"ranges": {"other": [1, 2]}}
    medians.median_into(r, [{"a": 3.0}, {"a": 1.0}, {"a": 2.0}], "a")
    medians.median_into(r, [{"b": 5.0}], "b")
    assert (r["a"], r["b"]) == (2.0, 5.0)
    assert r["ranges"] == {"other": [1, 2], "a": [1.0, 3.0], "b": [5.0, 5.0]}


def test_machine_shares_count_iowait_as_idle_and_irq_and_softirq_as_interrupts():
    before = [100, 0, 50, 800, 50, 10, 40, 0]
    after = [200, 0, 100, 1300, 100, 20, 80, 0]  # 750 ticks: 550 idle or iowait, 50 in interrupts
    assert cpu.machine_shares(before, after) == {"busy": 0.267, "interrupts": 0.067}
    assert len(cpu.machine_ticks()) == 8
