"""The reachability matrix: from every node to every other node, for every port any node
listens on, each connection is open or dropped exactly as designed; and the published
loopback ports answer the test host. A listening port that is not in the design fails.

The design is written here, independently of the roles' firewall declarations, so that
deleting any role's declaration (or adding a listener nobody declared) fails this test."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))
import requests  # noqa: E402
import stack  # noqa: E402
import urllib3  # noqa: E402

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

GROUPS = {
    "ingress": [stack.INGRESS_NODE],
    "api": list(stack.API_NODES),
    "broker": list(stack.BROKERS),
    "workers": [stack.WORKER],
    "monitoring": [stack.MONITORING],
}
GROUP_OF = {node: group for group, nodes in GROUPS.items() for node in nodes}
ANYONE = frozenset(GROUPS)
# (group that listens, tcp port) -> the groups that may connect. SSH admits only the admin
# network (the test host here), so no node may reach another's SSH.
DESIGN: dict[tuple[str, int], frozenset[str]] = {
    **{(g, 22): frozenset() for g in GROUPS},
    ("ingress", 80): ANYONE,
    ("ingress", 443): ANYONE,
    ("api", 3000): frozenset({"ingress", "monitoring"}),
    ("broker", 5671): frozenset({"api", "workers"}),  # AMQPS (plaintext AMQP is closed)
    ("broker", 4369): frozenset({"broker"}),  # epmd
    ("broker", 25672): frozenset({"broker"}),  # Erlang distribution
    ("broker", 15692): frozenset({"monitoring"}),  # rabbitmq_prometheus
    ("ingress", 9113): frozenset({"monitoring"}),  # the nginx exporter
    ("workers", 9102): frozenset({"monitoring"}),  # the worker containers' metrics
    **{(g, 9100): frozenset({"monitoring"}) for g in GROUPS},  # every node's node exporter
    # Prometheus and Alertmanager: the admin network only (the test host here)
    ("monitoring", 9090): frozenset(),
    ("monitoring", 9093): frozenset(),
}
# Ports nothing may reach from another node even though they do not listen on the private
# address (bound to 127.0.0.1): probed as well.
ALSO_PROBED = {("broker", 15672), ("broker", 5672)}  # the management UI; plaintext AMQP
# 127.0.0.1 -> the ingress: an HTTP answer, not just a TCP accept (Docker's proxy accepts
# whatever the node's firewall does)
PUBLISHED = {f"https://127.0.0.1:{stack.INGRESS_PORT}/healthz": 200, "http://127.0.0.1:28080/healthz": 200}

PROBE = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def probe(target):
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((target[0], target[1])); return "open"
    except socket.timeout:
        return "dropped"
    except OSError:
        return "refused"
    finally:
        s.close()
targets = json.load(sys.stdin)
with ThreadPoolExecutor(len(targets) or 1) as pool:
    print(json.dumps(list(pool.map(probe, targets))))
"""


def docker(node: str, *cmd: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["docker", "exec", "-i", node, *cmd], input=stdin, capture_output=True, text=True, check=True
    ).stdout


def listening(node: str) -> set[tuple[str, int]]:
    """(proto, port) of every socket listening beyond the loopback addresses."""
    out = set()
    for proto, flag in (("tcp", "-Hltn"), ("udp", "-Hlun")):
        for line in docker(node, "ss", flag).splitlines():
            local = line.split()[3]
            addr, _, port = local.rpartition(":")
            if ipaddress.ip_address(addr.strip("[]").split("%")[0].replace("*", "0.0.0.0")).is_loopback:
                continue  # e.g. the management UI, and Docker's embedded DNS on 127.0.0.11
            out.add((proto, int(port)))
    return out


def test_every_listening_port_is_in_the_design():
    undeclared = {}
    for node, group in GROUP_OF.items():
        extra = {f"{proto}/{port}" for proto, port in listening(node) if (group, port) not in DESIGN or proto != "tcp"}
        if extra:
            undeclared[node] = sorted(extra)
    assert undeclared == {}, f"listening, but not in the reachability design: {undeclared}"


def test_node_to_node_matrix():
    probes = []  # (src, dst, port, expected)
    for dst, dst_group in GROUP_OF.items():
        ports = sorted({port for (g, port) in DESIGN if g == dst_group} | {p for g, p in ALSO_PROBED if g == dst_group})
        for src, src_group in GROUP_OF.items():
            if src == dst:
                continue
            for port in ports:
                allowed = src_group in DESIGN.get((dst_group, port), frozenset())
                probes.append((src, dst, port, "open" if allowed else "dropped"))
    wrong = []
    for src in GROUP_OF:
        mine = [p for p in probes if p[0] == src]
        targets = [[stack.address(dst), port] for _, dst, port, _ in mine]
        got = json.loads(docker(src, "python3", "-c", PROBE, stdin=json.dumps(targets)))
        for (s, d, port, expected), result in zip(mine, got, strict=True):
            if result != expected:
                wrong.append(f"{s} -> {d}:{port}: {result}, designed {expected}")
    negatives = sum(1 for p in probes if p[3] == "dropped")
    print(f"{len(probes)} node-to-node pairs probed, {negatives} of them designed to be dropped")
    assert negatives >= 20
    assert wrong == [], "\n".join(wrong)


def test_published_loopback_ports_answer_the_test_host():
    for url, status in PUBLISHED.items():
        assert requests.get(url, verify=False, timeout=5, allow_redirects=False).status_code == status, url
