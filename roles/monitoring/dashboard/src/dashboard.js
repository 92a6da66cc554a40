// The hurtig dashboard: per function (from config.json, which the monitoring role writes
// from the shared functions list) and per node, charts of the last 15 minutes, read from
// Prometheus' HTTP API on the same origin and drawn with uPlot; redrawn every 15 s.
// Each chart records what it drew (data-series, data-points); <body data-state> becomes
// "ready" when every chart has been drawn once (the browser test reads both).
"use strict";

const RANGE_S = 15 * 60;
const STEP_S = 15;
const COLORS = ["#1d3557", "#e63946", "#2a9d8f", "#f4a261", "#6a4c93", "#457b9d", "#8d99ae", "#bc6c25", "#606c38"];

function functionCharts(fn) {
  const f = `function="${fn}"`;
  const rate = (m) => `sum(rate(${m}{${f}}[1m]))`;
  const quantile = (q) => `histogram_quantile(${q}, sum by (le) (rate(hurtig_worker_handler_seconds_bucket{${f}}[1m])))`;
  return [
    { id: `${fn}-depth`, title: "Queue depth (jobs)", series: [
      ["ready", `max(rabbitmq_detailed_queue_messages_ready{${f},queue_kind="main"})`],
      ["awaiting retry", `max(rabbitmq_detailed_queue_messages{${f},queue_kind="retry"})`],
      ["dead letters", `max(rabbitmq_detailed_queue_messages{${f},queue_kind="dead"})`],
    ] },
    { id: `${fn}-rate`, title: "Jobs per second", series: [
      ["accepted", rate("hurtig_api_jobs_accepted_total")],
      ["processed", rate("hurtig_worker_jobs_succeeded_total")],
      ["retried", rate("hurtig_worker_jobs_retried_total")],
      ["dead-lettered", rate("hurtig_worker_jobs_dead_lettered_total")],
    ] },
    { id: `${fn}-latency`, title: "Handler latency (s)", series: [["p50", quantile(0.5)], ["p99", quantile(0.99)]] },
    { id: `${fn}-consumers`, title: "Consumers and jobs in flight", series: [
      ["consumers", `max(rabbitmq_detailed_queue_consumers{${f},queue_kind="main"})`],
      ["in flight", `sum(hurtig_worker_jobs_in_flight{${f}})`],
    ] },
  ];
}

// one series per node: the label `node` of each result names it
const NODE_CHARTS = [
  { id: "node-cpu", title: "CPU busy (share)", byNode: `1 - avg by (node) (rate(node_cpu_seconds_total{mode="idle"}[1m]))` },
  { id: "node-steal", title: "CPU steal (share)", byNode: `avg by (node) (rate(node_cpu_seconds_total{mode="steal"}[1m]))` },
  { id: "node-memory", title: "Memory used (share)", byNode: "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes" },
  { id: "node-disk", title: "Fullest disk (share used)",
    byNode: `max by (node) (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|nsfs|squashfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|ramfs|nsfs|squashfs"})` },
];

async function queryRange(expr, start, end) {
  const params = new URLSearchParams({ query: expr, start: String(start), end: String(end), step: String(STEP_S) });
  const response = await fetch(`../api/v1/query_range?${params}`);
  if (!response.ok) throw new Error(`${response.status} for ${expr}`);
  const body = await response.json();
  return body.data.result; // [{metric, values: [[t, "v"], ...]}]
}

function align(xs, values) {
  const at = new Map(values.map(([t, v]) => [Math.round(t), Number(v)]));
  return xs.map((x) => (at.has(x) && Number.isFinite(at.get(x)) ? at.get(x) : null));
}

async function seriesOf(chart, xs, start, end) {
  if (chart.byNode) {
    const rows = await queryRange(chart.byNode, start, end);
    return rows.map((r) => [r.metric.node || r.metric.instance, align(xs, r.values)])
      .sort((a, b) => a[0].localeCompare(b[0]));
  }
  const out = [];
  for (const [label, expr] of chart.series) {
    const rows = await queryRange(expr, start, end);
    out.push([label, align(xs, rows.length ? rows[0].values : [])]);
  }
  return out;
}

function box(parent, chart) {
  let el = document.getElementById(chart.id);
  if (!el) {
    el = document.createElement("div");
    el.className = "chart";
    el.id = chart.id;
    el.innerHTML = `<h3>${chart.title}</h3><div class="plot"></div>`;
    parent.appendChild(el);
  }
  return el;
}

function draw(el, xs, series) {
  const plot = el.querySelector(".plot");
  plot.textContent = "";
  const points = series.reduce((n, [, ys]) => n + ys.filter((y) => y !== null).length, 0);
  el.dataset.series = String(series.length);
  el.dataset.points = String(points);
  if (points === 0) {
    plot.innerHTML = '<div class="empty">no data yet</div>';
    return;
  }
  const width = Math.max(260, el.clientWidth - 10);
  const opts = {
    width, height: 170, legend: { show: true },
    scales: { x: { time: true } },
    series: [{}, ...series.map(([label], i) => ({ label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false }))],
    axes: [{}, { size: 55, values: (u, ticks) => ticks.map((v) => +v.toPrecision(3)) }],
  };
  new uPlot(opts, [xs, ...series.map(([, ys]) => ys)], plot);
}

async function refresh(config) {
  const end = Math.floor(Date.now() / 1000 / STEP_S) * STEP_S;
  const start = end - RANGE_S;
  const xs = [];
  for (let t = start; t <= end; t += STEP_S) xs.push(t);
  const jobs = [];
  const fnSection = document.getElementById("functions");
  for (const fn of config.functions) {
    let group = document.getElementById(`fn-${fn}`);
    if (!group) {
      group = document.createElement("div");
      group.id = `fn-${fn}`;
      group.innerHTML = `<h2>Function ${fn}</h2><div class="grid"></div>`;
      fnSection.appendChild(group);
    }
    for (const chart of functionCharts(fn)) jobs.push([group.querySelector(".grid"), chart]);
  }
  for (const chart of NODE_CHARTS) jobs.push([document.getElementById("node-charts"), chart]);
  await Promise.all(jobs.map(async ([parent, chart]) => {
    const el = box(parent, chart);
    draw(el, xs, await seriesOf(chart, xs, start, end));
  }));
  document.getElementById("status").textContent = `last 15 minutes, drawn ${new Date().toISOString().slice(11, 19)} UTC`;
  document.body.dataset.state = "ready";
}

async function main() {
  try {
    const config = await (await fetch("config.json")).json();
    await refresh(config);
    setInterval(() => refresh(config).catch(fail), STEP_S * 1000);
  } catch (err) {
    fail(err);
  }
}

function fail(err) {
  document.body.dataset.state = "error";
  document.getElementById("status").textContent = `error: ${err.message}`;
}

main();
