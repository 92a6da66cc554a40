"""The full stack in containers, for the benchmarks, the fault tests and the full-stack tests.

The stack is the Molecule `default` scenario: the shipped staging inventory
(inventories/staging) converged with `site.yml` over SSH, its host names mapped onto
containers at fixed addresses (molecule/default/hosts.yml). Run by `make bench`/`make
chaos`, its ephemeral directory is pinned to .cache/stack so these scripts find the
inventory and the SSH key Molecule writes; run from the scenario's verifier, Molecule's own
(MOLECULE_EPHEMERAL_DIRECTORY) is used. Only 127.0.0.1 is targeted: the ingress is
published on 127.0.0.1:28443; the broker is reached as an operator would, through an SSH
tunnel to the deploy user (127.0.0.1:25693 -> the broker's AMQPS port), as a client of the
deployment's CA (the broker node's own client certificate, copied to .cache/tls/).

    python bench/stack.py up      create + converge (prints the converge time)
    python bench/stack.py down    destroy
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import quote

import pika
import stack_load

# The parts, re-exported: callers use stack.<name> for all of them
from stack_ansible import converge, molecule, molecule_env, playbook, run_playbook, task_counts  # noqa: F401
from stack_inventory import (  # noqa: F401
    API_NODES,
    BROKER,
    BROKERS,
    EPHEMERAL,
    INGRESS,
    INGRESS_NODE,
    INGRESS_PORT,
    MONITORING,
    ROOT,
    SCENARIO,
    STAGING,
    VAULT_PASSWORD,
    WORKER,
    _yaml,
    address,
    api_key,
    auth,
    contract,
    function,
    hosts,
    role_defaults,
    secrets,
)
from stack_load import Headers, Load, post_jobs, post_jobs_async, ssl_context  # noqa: F401

from hurtig import amqp

AMQP_TUNNEL_PORT = 25693
OUTPUT_LOG = "/var/lib/hurtig/output/processed.log"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def node_pid(name: str) -> str:
    """The PID of a node container's init on this host (its namespaces, /proc/<pid>/root)."""
    return sh("docker", "inspect", "-f", "{{.State.Pid}}", name).strip()


def netns(name: str) -> list[str]:
    """The command prefix that runs this host's binaries in a node's network namespace."""
    return ["nsenter", f"--net=/proc/{node_pid(name)}/ns/net"]


@cache
def ingress_netns() -> tuple[list[str], str]:
    """Run a load client inside the ingress node's network namespace, against its loopback:
    the command prefix (nsenter, the host's binaries) and the ingress's HTTPS URL there. No
    Docker proxy on the path: the published port (INGRESS_PORT) goes through Docker's userland
    proxy, which costs most of a core under load and dies at a few thousand connections."""
    ports = json.loads(sh("docker", "inspect", "-f", "{{json .NetworkSettings.Ports}}", INGRESS_NODE))
    inner = next(p for p, binds in ports.items() if any(b["HostPort"] == str(INGRESS_PORT) for b in binds or []))
    return netns(INGRESS_NODE), f"https://127.0.0.1:{inner.split('/')[0]}"


def post_jobs_in_ingress(
    n: int, rate: float = 0, concurrency: int = 32, function_name: str = "record", payload: dict | None = None
) -> Load:
    """post_jobs from the ingress node's network namespace against its loopback, as wrk runs:
    no Docker proxy between the client and nginx. The client is a child process (nsenter), so
    its CPU counts as the load generator's (cpu.snapshot)."""
    prefix, url = ingress_netns()
    script = Path(__file__).with_name("stack_load.py")
    args = [url, str(n), str(rate), str(concurrency), function_name, json.dumps(payload or {})]
    out = subprocess.run([*prefix, sys.executable, str(script), *args], capture_output=True, text=True, check=True)
    return stack_load.from_json(out.stdout)


def _tunnel_socket() -> Path:
    # a short path: a unix socket's path is limited to 107 bytes
    return Path(tempfile.gettempdir()) / f"hurtig-amqp-{hashlib.sha1(str(EPHEMERAL).encode()).hexdigest()[:10]}"


def amqp_tunnel() -> int:
    """An SSH tunnel to the broker's AMQP port through the deploy user, as an operator opens
    one (the firewall admits AMQP from the API and worker nodes only). Returns its port."""
    ssh = EPHEMERAL / "ssh"
    control = ["-S", str(_tunnel_socket())]
    if (
        _port_open(AMQP_TUNNEL_PORT)
        and subprocess.run(["ssh", *control, "-O", "check", "tunnel"], capture_output=True, check=False).returncode == 0
    ):
        return AMQP_TUNNEL_PORT
    close_tunnel()
    broker = address(BROKER)
    user = _yaml(STAGING / "group_vars" / "all" / "main.yml")["hurtig_deploy_user"]
    subprocess.run(
        ["ssh", "-f", "-N", "-M", *control, "-i", str(ssh / "id_ed25519"),
         "-o", f"UserKnownHostsFile={ssh / 'known_hosts'}", "-o", "ExitOnForwardFailure=yes",
         "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-o", "BatchMode=yes",
         "-L", f"127.0.0.1:{AMQP_TUNNEL_PORT}:{broker}:{amqp_port()}", f"{user}@{broker}"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return AMQP_TUNNEL_PORT


def close_tunnel() -> None:
    """Close the tunnel of this stack (a destroyed stack's would linger until its keepalive fails)."""
    sock = _tunnel_socket()
    if sock.exists():
        subprocess.run(["ssh", "-S", str(sock), "-O", "exit", "tunnel"], capture_output=True, check=False)


def amqp_port() -> int:
    """The port the API and workers use: AMQPS unless the contract turns TLS off."""
    c = contract()
    return c["hurtig_amqps_port"] if c["hurtig_amqp_tls"] else c["hurtig_amqp_port"]


@cache
def amqp_tls_files() -> Path:
    """The CA, and a client certificate and key of the deployment (the broker node's own),
    copied once to .cache/tls/<broker>/ (key mode 0600)."""
    dest = ROOT / ".cache" / "tls" / BROKER
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        path = dest / name
        path.touch(mode=0o600)
        path.write_text(node(BROKER, "cat", f"/etc/rabbitmq/tls/{name}"))
    return dest


def amqp_admin_params(**query: str) -> pika.URLParameters:
    """The administrator's connection through the tunnel; over TLS, the broker's certificate
    is checked against the CA for the broker's name (the tunnel's end is 127.0.0.1)."""
    c = contract()
    password = quote(secrets()["vault_rabbitmq_admin_password"], safe="")
    scheme = "amqps" if c["hurtig_amqp_tls"] else "amqp"
    q = "&".join(f"{k}={v}" for k, v in query.items())
    params = pika.URLParameters(
        f"{scheme}://{c['hurtig_admin_user']}:{password}@127.0.0.1:{amqp_tunnel()}/{quote(c['hurtig_vhost'], safe='')}"
        + (f"?{q}" if q else "")
    )
    if c["hurtig_amqp_tls"]:
        files = amqp_tls_files()
        tls = amqp.Tls(str(files / "ca.pem"), str(files / "cert.pem"), str(files / "key.pem"))
        params.ssl_options = pika.SSLOptions(amqp.ssl_context(tls), server_hostname=BROKER)
    return params


def sh(*cmd: str, check: bool = True, stdin: str | None = None) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, input=stdin)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: rc={out.returncode}: {out.stderr.strip()}")
    return out.stdout


def node(name: str, *cmd: str, check: bool = True, stdin: str | None = None) -> str:
    """Run a command on a stack node (a systemd container)."""
    return sh("docker", "exec", "-i", name, *cmd, check=check, stdin=stdin)


def purge(name: str) -> int:
    """Drop a queue's ready messages (benchmark backlogs only); how many there were."""
    conn = pika.BlockingConnection(amqp_admin_params())
    try:
        return conn.channel().queue_purge(name).method.message_count
    finally:
        conn.close()


def queue_state(name: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue; (-1, -1) while the broker does not answer."""
    try:
        conn = pika.BlockingConnection(amqp_admin_params(connection_attempts="1", socket_timeout="2"))
    except (pika.exceptions.AMQPError, OSError):  # OSError: a TLS handshake cut by a broker restart
        return -1, -1
    try:
        ok = conn.channel().queue_declare(name, passive=True).method
        return ok.message_count, ok.consumer_count
    except (pika.exceptions.AMQPError, OSError):
        return -1, -1
    finally:
        if conn.is_open:
            conn.close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> float:
    """Wait until predicate() is true; return the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(interval)
    raise TimeoutError(f"{what}: not reached in {timeout:.0f} s")


@dataclass
class Processed:
    """processed.log of the record handler on the worker node: `<job_id> <started> <attempt>`."""

    started: dict[str, float] = field(default_factory=dict)  # first start per job id
    lines: int = 0

    @property
    def duplicates(self) -> int:
        return self.lines - len(self.started)


def processed(worker: str = WORKER) -> Processed:
    text = node(worker, "sh", "-c", f"cat {OUTPUT_LOG} 2>/dev/null || true")
    result = Processed()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue  # a line cut short by a kill: the file per job id still proves the job ran
        result.lines += 1
        result.started.setdefault(parts[0], float(parts[1]))
    return result


def reset_processed(worker: str = WORKER) -> None:
    out = Path(OUTPUT_LOG).parent
    node(worker, "sh", "-c", f"find {out} -mindepth 1 -delete && : > {OUTPUT_LOG} && chmod 666 {OUTPUT_LOG}")


def main(argv: list[str]) -> int:
    if argv[1:] == ["up"]:
        EPHEMERAL.mkdir(parents=True, exist_ok=True)
        log = ROOT / ".cache" / "stack-up.log"
        close_tunnel()
        molecule("destroy", log=log)  # leftovers of an earlier run
        molecule("create", log=log)
        converged = ROOT / ".cache" / "stack-converge.log"
        print(f"converge: {converge(converged):.0f} s (log: {converged})")
        return 0
    if argv[1:] == ["down"]:
        close_tunnel()
        molecule("destroy", log=ROOT / ".cache" / "stack-down.log")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
