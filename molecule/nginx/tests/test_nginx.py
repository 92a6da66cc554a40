"""The ingress, checked over HTTPS from outside (127.0.0.1 published ports) and from inside."""

from __future__ import annotations

import json
import socket
import ssl
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import testinfra
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from helpers import ROOT, playbook

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

testinfra_hosts = ["docker://nginx-trixie", "docker://nginx-bookworm"]

PORTS = {"nginx-trixie": (27080, 27443), "nginx-bookworm": (29080, 29443)}


@pytest.fixture
def ports(host):
    return PORTS[host.backend.get_hostname()]


def test_effective_config_has_epoll_8192_keepalive(host):
    cfg = host.check_output("nginx -T 2>/dev/null")
    assert "use epoll;" in cfg
    assert "worker_connections 8192;" in cfg
    assert "worker_processes auto;" in cfg
    assert "keepalive 2048;" in cfg
    assert "proxy_http_version 1.1;" in cfg
    assert 'proxy_set_header Connection "";' in cfg
    assert "proxy_next_upstream error timeout non_idempotent;" in cfg
    assert "server_tokens off;" in cfg


def test_post_reaches_upstream_and_its_202_comes_back(ports):
    r = requests.post(f"https://127.0.0.1:{ports[1]}/v1/functions/sleep/jobs", json={"x": 1}, verify=False, timeout=5)
    assert r.status_code == 202
    assert r.json()["job_id"] == "stub"
    assert r.json()["request_id"]  # nginx passes X-Request-ID upstream
    # and, without the client's own Idempotency-Key, the request id as one (a retry on the
    # next API node keeps the job id); a client's key is passed as it is
    assert r.json()["idempotency_key"] == r.json()["request_id"]
    r = requests.post(f"https://127.0.0.1:{ports[1]}/v1/functions/sleep/jobs", json={}, verify=False, timeout=5,
                      headers={"Idempotency-Key": "order-17"})  # fmt: skip
    assert r.json()["idempotency_key"] == "order-17"
    assert r.headers["Server"] == "nginx"


def test_hsts_only_with_a_certificate_from_a_ca(host, ports):
    r = requests.get(f"https://127.0.0.1:{ports[1]}/healthz", verify=False, timeout=5)
    if host.backend.get_hostname() == "nginx-trixie":  # ACME
        assert r.headers["Strict-Transport-Security"] == "max-age=63072000"
    else:  # self-signed: a browser that met it once would refuse the next certificate
        assert "Strict-Transport-Security" not in r.headers


def test_http_redirects_to_https(ports):
    r = requests.get(f"http://127.0.0.1:{ports[0]}/v1/x", allow_redirects=False, timeout=5)
    assert r.status_code == 301
    assert r.headers["Location"].startswith("https://")


def test_healthz_answered_by_nginx(host, ports):
    host.run_test("systemctl stop stub-upstream")
    try:
        r = requests.get(f"https://127.0.0.1:{ports[1]}/healthz", verify=False, timeout=5)
        assert (r.status_code, r.text) == (200, "ok\n")
        assert requests.get(f"http://127.0.0.1:{ports[0]}/healthz", timeout=5).status_code == 200
        # with the API node down the proxied path fails fast with 502, not a hang
        r = requests.post(f"https://127.0.0.1:{ports[1]}/v1/functions/sleep/jobs", json={}, verify=False, timeout=10)
        assert r.status_code == 502
    finally:
        host.run_test("systemctl start stub-upstream")
        time.sleep(1)


def test_body_over_the_limit_gets_413(ports):
    r = requests.post(
        f"https://127.0.0.1:{ports[1]}/v1/functions/sleep/jobs", data=b"x" * (100 * 1024), verify=False, timeout=5
    )
    assert r.status_code == 413


def tls_handshake(port: int, version: ssl.TLSVersion) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = version
    ctx.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("ALL:@SECLEVEL=0")  # let the client offer old protocols at all
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, ctx.wrap_socket(sock) as tls:
        return tls.version() or ""


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_is_refused(ports, version):
    with pytest.raises(ssl.SSLError) as err:
        tls_handshake(ports[1], version)
    # refused by the server (protocol version alert), not by the client's own policy
    assert "NO_PROTOCOLS_AVAILABLE" not in str(err.value)


def test_tls12_and_tls13_accepted(ports):
    assert tls_handshake(ports[1], ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    assert tls_handshake(ports[1], ssl.TLSVersion.TLSv1_2) == "TLSv1.2"


def test_upstream_keepalive_reuses_connections(host):
    script = r"""
import http.client, json, ssl
ctx = ssl._create_unverified_context()
def stats():
    c = http.client.HTTPConnection("127.0.0.1", 3000); c.request("GET", "/stats")
    s = json.loads(c.getresponse().read()); c.close(); return s
before = stats()
conn = http.client.HTTPSConnection("127.0.0.1", 443, context=ctx)
codes = set()
for _ in range(1000):
    conn.request("POST", "/v1/functions/sleep/jobs", body=b"{}", headers={"Content-Type": "application/json"})
    r = conn.getresponse(); r.read(); codes.add(r.status)
after = stats()
print(json.dumps({"codes": sorted(codes), "connections": after["connections"] - before["connections"],
                  "requests": after["requests"] - before["requests"]}))
"""
    out = json.loads(host.check_output(f"python3 -c '{script}'"))
    assert out["codes"] == [202]
    assert out["requests"] == 1000
    assert out["connections"] <= 10, out  # without keepalive this would be 1,000


def test_stub_status_on_localhost_only(host):
    assert host.socket("tcp://127.0.0.1:8081").is_listening
    assert not host.socket("tcp://0.0.0.0:8081").is_listening
    out = host.check_output(
        "python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:8081/nginx_status').read().decode())\""
    )
    assert "Active connections" in out


def test_the_nginx_exporter_reads_stub_status_and_serves_the_private_address_only(host):
    address = host.check_output("hostname -I").split()[0]
    local = {row.split()[3] for row in host.check_output("ss -Hltn").split("\n")}
    assert [a for a in local if a.endswith(":9113")] == [f"{address}:9113"]
    out = host.check_output(
        f"python3 -c \"import urllib.request as u; print(u.urlopen('http://{address}:9113/metrics').read().decode())\""
    )
    assert "nginx_up 1" in out.splitlines()
    assert host.service("prometheus-nginx-exporter").is_enabled


def test_per_client_template_override_is_served(ports):
    r = requests.get(f"https://127.0.0.1:{ports[1]}/client-hello", verify=False, timeout=5)
    assert (r.status_code, r.text) == (200, "hello from example-client\n")


def test_bench_location_returns_202(ports):
    r = requests.get(f"https://127.0.0.1:{ports[1]}/bench/return202", verify=False, timeout=5)
    assert r.status_code == 202


def test_broken_value_never_went_live(host, ports):
    assert "megabytes" not in host.file("/etc/nginx/hurtig/site.conf").content_string
    assert "megabytes" not in host.file("/etc/nginx/nginx.conf").content_string
    assert host.service("nginx").is_running
    assert host.run("nginx -t").rc == 0
    assert host.run("ls -d /tmp/nginx-candidate.* 2>/dev/null").stdout == ""  # scratch removed


def test_burst_gets_429(ports):
    time.sleep(1)
    url = f"https://127.0.0.1:{ports[1]}/v1/functions/sleep/jobs"
    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(lambda _: requests.post(url, json={}, verify=False, timeout=10).status_code, range(100)))
    assert codes.count(429) > 0
    assert codes.count(202) >= 10  # the burst is served
    assert set(codes) <= {202, 429}
    time.sleep(2)


def test_only_the_public_paths_reach_the_api(host, ports):
    base = f"https://127.0.0.1:{ports[1]}"
    r = requests.get(f"{base}/openapi.json", verify=False, timeout=5)
    assert (r.status_code, r.json()) == (200, {"path": "/openapi.json"})  # the stub's answer
    for path in ("/readyz", "/metrics"):  # not from this (non-monitoring) address
        assert requests.get(f"{base}{path}", verify=False, timeout=5).status_code == 403, path
        script = (
            "import ssl, urllib.request as u; "
            f"print(u.urlopen('https://127.0.0.1{path}', context=ssl._create_unverified_context()).status)"
        )
        assert host.check_output(f'python3 -c "{script}"') == "200", path  # from the monitoring networks (the node)
    for path in ("/", "/admin", "/v2/functions/x/jobs", "/healthz/x", "/openapi.json.bak"):
        r = requests.get(f"{base}{path}", verify=False, timeout=5)
        assert r.status_code == 404 and r.json()["error"] == "not_found", path
        assert r.headers["Content-Type"].startswith("application/problem+json")


def test_requests_with_a_key_are_limited_per_key(ports):
    """nginx_limit_key_rate 1r/s with a burst of 2 here: a key's fourth quick request gets
    429, while another key, from the same address, is served."""
    time.sleep(2)
    url = f"https://127.0.0.1:{ports[1]}/v1/functions/sleep/jobs"

    def post(key: str) -> int:
        auth = {"Authorization": f"Bearer {key}"}
        return requests.post(url, json={}, headers=auth, verify=False, timeout=5).status_code

    # at once, so that a slow machine does not let the bucket refill between them (1 per s)
    with ThreadPoolExecutor(max_workers=6) as pool:
        first = list(pool.map(lambda _: post("key-one-0123456789abcdef"), range(6)))
    assert first.count(202) >= 3 and 429 in first, first
    assert post("key-two-0123456789abcdef") == 202
    time.sleep(3)


def test_many_keys_from_one_address_are_capped_together(ports):
    """A flood of made-up keys: each is its own per-key limit, so all the keys of one client
    address together are capped too (nginx_limit_keyed_net_rate 5r/s, burst 10 here)."""
    time.sleep(3)
    url = f"https://127.0.0.1:{ports[1]}/v1/functions/sleep/jobs"

    def post(i: int) -> int:
        auth = {"Authorization": f"Bearer made-up-{i:04d}-0123456789"}
        return requests.post(url, json={}, headers=auth, verify=False, timeout=10).status_code

    # 60 at once: sent one after the other, a busy machine (CI) took so long that the
    # bucket refilled (5 per s) and 26 of 30 were served
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(post, range(60)))
    allowed = 10 + 1 + 5 * (time.monotonic() - t0)  # the burst, the first, the refill meanwhile
    assert codes.count(202) >= 10 and codes.count(429) >= min(5, 60 - allowed), codes
    assert set(codes) <= {202, 429}
    time.sleep(3)


ACME_NAME = "ingress.hurtig.test"


def pebble_root(trixie) -> str:
    """The root of the chains pebble issues (it makes a new one each time it starts)."""
    script = "import urllib.request as u; print(u.urlopen('https://localhost:15000/roots/0').read().decode())"
    return trixie.check_output(f'python3 -c "{script}"')


def served_certificate(trixie) -> dict:
    """The certificate the ACME node serves to a client that trusts pebble's root only and
    checks the name: its serial and expiry."""
    ctx = ssl.create_default_context(cadata=pebble_root(trixie))
    with (
        socket.create_connection(("127.0.0.1", 27443), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=ACME_NAME) as tls,
    ):
        cert = tls.getpeercert()
    return {"serial": cert["serialNumber"], "not_after": ssl.cert_time_to_seconds(cert["notAfter"])}


def recap_line(out: str, name: str) -> str:
    return next(line for line in out[out.rindex("PLAY RECAP") :].splitlines() if line.startswith(name))


def test_acme_certificate_is_served_and_renewed_before_expiry():
    """Converge ordered the certificate from pebble (HTTP-01 through nginx on port 80). A run
    of playbooks/certificates.yml orders a new one only when it is due: nothing with 30 days,
    a new certificate once the renewal window covers its expiry; nginx -t before the reload."""
    trixie = testinfra.get_host("docker://nginx-trixie")
    first = served_certificate(trixie)
    assert requests.get("http://127.0.0.1:27080/.well-known/acme-challenge/none", timeout=5).status_code == 404

    quiet = playbook(ROOT / "playbooks/certificates.yml")
    assert " changed=0 " in recap_line(quiet, "nginx-trixie"), recap_line(quiet, "nginx-trixie")
    assert served_certificate(trixie)["serial"] == first["serial"]

    days_left = int((first["not_after"] - time.time()) / 86400)
    out = playbook(ROOT / "playbooks/certificates.yml", "-e", f"nginx_acme_renew_days={days_left + 1}")
    assert "TASK [nginx : Let the CA validate and write the certificate]" in out
    tested = out.index("RUNNING HANDLER [nginx : Test the live nginx configuration]")
    assert tested < out.index("RUNNING HANDLER [nginx : Reload nginx]")
    assert served_certificate(trixie)["serial"] != first["serial"]
    assert trixie.file("/var/lib/hurtig/acme/.well-known/acme-challenge").listdir() == []  # responses removed
