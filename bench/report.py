"""Render bench/results.json and bench/faults.json into docs/benchmarks.md and bench/results.svg.

    python bench/report.py     (make bench and make chaos leave the JSON; this writes the rest)

The section of docs/benchmarks.md between the markers `<!-- bench:start -->` and `<!-- bench:end -->` is
replaced; the plot shows every ratio target next to the value reached.
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
FAULTS = ROOT / "bench" / "faults.json"
SVG = ROOT / "bench" / "results.svg"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

ROWS = [
    ("nginx_return202_rps", "ingress nginx `return 202` (the ceiling)", "req/s"),
    ("ingress_jobs_rps", "POST job → nginx → API → broker confirm → 202", "req/s"),
    ("ingress_ratio", "jobs / ceiling", ""),
    ("api_healthz_rps", "API /healthz through nginx (upstream keepalive on)", "req/s"),
    ("api_publish_ratio", "jobs / API healthz: cost of the durable publish", ""),
    ("keepalive_off_rps", "API /healthz through nginx, upstream keepalive off", "req/s"),
    ("keepalive_ratio", "keepalive on / off", ""),
    ("auth_overhead_ratio", "jobs with API keys / jobs with the key check off (same run)", ""),
    ("nginx_cpu_us_per_request", "ingress nginx CPU per `return 202`", "µs"),
    ("api_cpu_us_per_healthz", "API CPU per /healthz through nginx", "µs"),
    ("api_cpu_us_per_job", "API CPU per job (auth, validate, publish, confirm)", "µs"),
    ("api_job_vs_healthz_cpu", "API CPU per job / per healthz with every API process saturated", ""),
    ("api_cpu_us_per_healthz_at_job_rate", "API CPU per /healthz, sent at the jobs' rate", "µs"),
    ("api_job_vs_healthz_cpu_at_job_rate", "API CPU per job / per healthz at the same rate", ""),
    ("broker_cpu_us_per_job", "brokers' CPU per job (3 quorum members)", "µs"),
    ("broker_raw_cpu_us_per_message", "brokers' CPU per message of a raw publisher, no API (same run)", "µs"),
    ("broker_vs_raw_cpu", "brokers' CPU per job / per raw message", ""),
    ("many_clients_healthz_ratio", "API /healthz, 4,096 keep-alive clients / 64", ""),
    ("many_clients_jobs_ratio", "jobs, 4,096 keep-alive clients / 64", ""),
    ("many_clients_socket_errors", "socket errors with 4,096 clients (both cases)", ""),
    ("ingress_jobs_with_workers_rps", "the same with the record workers running on the same cores", "req/s"),
    ("record_processed_rps", "what the 2 record workers process meanwhile (accepted less left waiting)", "jobs/s"),
    ("record_drain_rps", "what they process with the machine to themselves (a backlog drained)", "jobs/s"),
    (
        "e2e_capacity_rps",
        "what they process while the end-to-end case's paced client offers `record_processed_rps`",
        "jobs/s",
    ),
    ("e2e_p50_ms", "POST sent → handler started, p50, at half of that", "ms"),
    ("e2e_p99_ms", "the same, p99", "ms"),
    ("first_job_after_idle_ms", "first job after the idle period", "ms"),
    ("warm_p99_ms", "warm p99 at 50 jobs/s", "ms"),
    ("idle_vs_warm_p99", "first job after idle / warm p99", ""),
    ("scale_up_s", "scale.yml 2 → 6 replicas until all consumers attached", "s"),
    ("drain_speedup", "drain a backlog: 2 replicas / 6 replicas", "x"),
    ("autoscale_first_consumer_s", "autoscaling: burst over the threshold → a consumer more, p95 of 5", "s"),
    ("autoscale_to_max_s", "autoscaling: burst → max (6) consumers attached", "s"),
    ("autoscale_lost", "autoscaling: accepted jobs not done after out and in", ""),
    ("autoscale_flaps", "autoscaling: direction changes within a quiet period, steady half load", ""),
    ("site_first_s", "site.yml, first converge of the stack", "s"),
    ("site_rerun_s", "site.yml, idempotent re-run", "s"),
    ("site_rerun_ratio", "re-run / first", ""),
]


def fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def table(results: dict) -> list[str]:
    targets = results.get("targets", {})
    lines = ["| key | what | value (range of the runs) | target |", "|---|---|---|---|"]
    for key, what, unit in ROWS:
        if key not in results:
            continue
        t = targets.get(key)
        mark = "" if t is None else f"{t['target']} {'✅' if t['met'] else '❌'}"
        span = results.get("ranges", {}).get(key)
        shown = f"{fmt(results[key])} {unit}".strip()
        if span and span[0] != span[1]:
            shown += f" ({fmt(span[0])} to {fmt(span[1])})"
        lines.append(f"| `{key}` | {what} | {shown} | {mark} |")
    return lines


GROUPS = ("nginx", "api", "broker", "workers", "load")


def cpu_table(results: dict) -> list[str]:
    """CPU per request of each group of processes (cgroup accounting), per wrk case."""
    runs = {k: r for k, r in results.get("wrk_runs", {}).items() if isinstance(r, dict) and "cpu_us_per_request" in r}
    if not runs:
        return []
    lines = [
        "CPU per request by process group, µs (cgroups; `load` is the load generator, wrk or h2load, in the "
        "ingress's network namespace; the last of the runs). Busy and interrupts: shares of the two cores' "
        "time over the case (/proc/stat); a cgroup's time includes the interrupts that land on its tasks:",
        "",
        "| case | clients | req/s | " + " | ".join(GROUPS) + " | busy | interrupts |",
        "|---|---|---|" + "---|" * (len(GROUPS) + 2),
    ]
    for name, r in runs.items():
        per, machine = r["cpu_us_per_request"], r.get("machine", {})
        tool = f" ({r['tool']})" if r.get("tool", "wrk") != "wrk" else ""
        cells = [name + tool, str(r["connections"]), fmt(r["rps"]), *(fmt(per[g]) for g in GROUPS)]
        cells += [f"{machine[k]:.0%}" if k in machine else "" for k in ("busy", "interrupts")]
        lines.append("| " + " | ".join(cells) + " |")
    raw = results.get("broker_baseline")
    if raw:
        lines += [
            "",
            f"Raw publisher (no API; {raw['connections']} connections, {raw['in_flight']} in flight): "
            f"{fmt(raw['rate'])} messages/s, brokers {fmt(raw['broker_cpu_us_per_message'])} µs per message.",
        ]
    return [*lines, ""]


def faults_table(faults: dict) -> list[str]:
    lines = [
        f"Fault tests (`make chaos N={faults['n']}`, {faults['rate']:.0f} jobs/s, {faults['date']}):",
        "",
        "| fault | accepted | processed | lost | duplicates | non-202 | recovery |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in faults["faults"].items():
        non = ", ".join(f"{k}: {v}" for k, v in r["non_202"].items()) or "0"
        label = f"{name} (re-run {r['date']}: {r['rerun_why']})" if "rerun_why" in r else name
        lines.append(
            f"| {label} | {r['accepted']} | {r['processed_unique']} | **{r['lost']}** | {r['duplicates']} "
            f"| {non} | {r['recovery_s']} s |"
        )
    bad = faults.get("bad_input")
    if bad:
        per = "; ".join(f"{k} → {', '.join(f'{s} x{n}' for s, n in v.items())}" for k, v in bad["statuses"].items())
        lines += [
            "",
            f"Bad input: {bad['requests']} malformed requests, {bad['5xx']} answered 5xx, {bad['accepted']} accepted, "
            f"{bad['processed']} processed, workers running afterwards: {bad['workers_running']}. {per}.",
        ]
    revoked = faults.get("revoked_key")
    if revoked:
        lines += [
            "",
            f"Revoked key (`playbooks/api-keys.yml`, {revoked['revoke_playbook_s']} s): while listed "
            f"{revoked['while_listed']}, refused {revoked['revoked_key_refused_after_s']} s after the run returned, "
            f"then {revoked['after_revocation']}; the other clients {revoked['other_clients']}.",
        ]
    flood = faults.get("wrong_key_flood")
    if flood:
        lines += [
            "",
            f"Wrong-key flood: {flood['wrong_keys']:,} distinct wrong keys at {flood['wrong_key_rps']}/s, answered "
            f"{flood['wrong_key_statuses']}; a valid client meanwhile {flood['valid_rps_during_flood']} jobs/s, "
            f"alone {flood['valid_rps_alone']} jobs/s (x{flood['valid_ratio']}).",
        ]
    return lines


def svg(results: dict) -> str:
    """One bar per target: value / target (≥ 1 means met), on a log-free linear scale to 3."""
    targets = results.get("targets", {})
    w, row, left = 640, 28, 200
    h = 40 + row * len(targets)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<text x="8" y="18" font-weight="bold">hurtig benchmark targets ({results.get("date", "")}): '
        "reached / target, 1 = target met</text>",
    ]
    scale = (w - left - 60) / 3
    x1 = left + scale
    for i, (key, t) in enumerate(targets.items()):
        y = 32 + i * row
        op, goal = t["target"].split()
        value = t["value"]
        if value is None:
            continue
        ratio = value / float(goal) if op == ">=" else float(goal) / max(value, 1e-9)
        bar = min(ratio, 3) * scale
        colour = "#2e7d32" if t["met"] else "#c62828"
        out.append(f'<text x="8" y="{y + 15}">{key}</text>')
        out.append(f'<rect x="{left}" y="{y + 4}" width="{bar:.1f}" height="16" fill="{colour}"/>')
        out.append(f'<text x="{left + bar + 4:.1f}" y="{y + 16}">{fmt(float(value))} ({escape(t["target"])})</text>')
    out.append(f'<line x1="{x1:.1f}" y1="28" x2="{x1:.1f}" y2="{h - 4}" stroke="#000" stroke-dasharray="4 3"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def e2e_row(e: dict) -> str:
    """A row of the end-to-end sweep; runs before CPU was recorded per rate leave those cells empty."""
    us = e.get("cpu_us_per_job", {})
    cells = [f"{us[g]:,.0f}" if g in us else "" for g in ("nginx", "api", "broker", "workers", "load")]
    busy = f"{e['cpu_busy']:.0%}" if "cpu_busy" in e else ""
    done = f"{e['processed_rps']:,.0f}" if "processed_rps" in e else ""
    return f"| {e['rate']} | {done} | {e['p50_ms']} | {e['p99_ms']} | {busy} | " + " | ".join(cells) + " |"


def main() -> int:
    parts: list[str] = []
    if RESULTS.exists():
        results = json.loads(RESULTS.read_text())
        wrk = results["wrk"]
        parts += [
            f"Benchmarks (`make bench`, {results['date']}, {results['machine']}; wrk {wrk['threads']} threads, "
            f"{wrk['connections']} keep-alive connections, {wrk['seconds']} s per case, in the ingress node's network "
            "namespace against its loopback: no Docker proxy on the path). "
            f"The wrk cases and the re-run of site.yml ran {results.get('runs', 1)} times: each value is the median, "
            "the range in brackets the lowest and highest run; the targets are judged on the median:",
            "",
            *table(results),
            "",
            *cpu_table(results),
            "End-to-end latency by rate (POST sent → handler started; the load client, Python, in the ingress "
            "node's network namespace on the same cores; processed: jobs started per second while the load "
            "ran; CPU busy: the share of both cores the stack and the client used, from the first POST until "
            "the last job started; µs per job by process group). 50 jobs/s, then 10, 25 and 50 % of "
            "`e2e_capacity_rps` (the 50 % run whose p99 is the median of the runs), last the probe that "
            "measured it:",
            "",
            "| jobs/s | processed | p50 ms | p99 ms | CPU busy | nginx | api | broker | workers | load |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *(e2e_row(e) for e in results.get("e2e_sweep", [])),
            "",
            "![benchmark targets](../bench/results.svg)",
            "",
        ]
        # rows measured apart from the rest: bench/run.py --site-only, bench/autoscale.py alone
        if "site_date" in results:
            parts += [f"(The `site_*` rows: `bench/run.py --site-only`, {results['site_date']}.)", ""]
        if settle := results.get("site_settle"):
            waits = ", ".join(f"{w['waited_s']:g}" for w in settle)
            busy = max(w["busy"] for w in settle)
            rest = f"waited {waits} s, until at most {busy:.0%} of the two cores were busy over 5 s"
            parts += [f"(Each re-run of site.yml started on a machine at rest, as the first converge did: {rest}.)", ""]
        if "many_clients_date" in results:
            parts += [f"(The `many_clients_*` rows: `bench/run.py --many-only`, {results['many_clients_date']}.)", ""]
        if "e2e_date" in results:
            parts += [f"(The `e2e_*` rows and the sweep: `bench/run.py --e2e-only`, {results['e2e_date']}.)", ""]
        if "drain_date" in results:
            parts += [f"(The `record_drain_rps` row: `bench/run.py --drain-only`, {results['drain_date']}.)", ""]
        if "scale_date" in results:
            parts += [f"(The `scale_up_s` row: `bench/run.py --scale-only`, {results['scale_date']}.)", ""]
        scale = results.get("autoscale")
        if scale and scale.get("date", results["date"]) < results["date"]:  # a full run measures it later
            parts += [f"(The `autoscale_*` rows: `bench/autoscale.py` alone, {scale['date']}.)", ""]
        SVG.write_text(svg(results))
    if FAULTS.exists():
        parts += faults_table(json.loads(FAULTS.read_text()))
    text = DOC.read_text()
    if START not in text or END not in text:
        sys.exit(f"{DOC.relative_to(ROOT)} has no {START} ... {END} section")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(head + START + "\n" + "\n".join(parts).rstrip() + "\n" + END + tail)
    print(f"{DOC.relative_to(ROOT)}, benchmark section: {len(parts)} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
