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

import asyncio
import hashlib
import importlib.util
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pika
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from hurtig import amqp

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "molecule" / "default"
STAGING = ROOT / "inventories" / "staging"
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY") or ROOT / ".cache" / "stack")
VAULT_PASSWORD = ROOT / "inventories" / "vault-password.example"
INGRESS_PORT = 28443
INGRESS = f"https://127.0.0.1:{INGRESS_PORT}"
AMQP_TUNNEL_PORT = 25693
OUTPUT_LOG = "/var/lib/hurtig/output/processed.log"

# staging's host names (inventories/staging/hosts.yml)
INGRESS_NODE = "stg-ingress-1"
API_NODES = ("stg-api-1", "stg-api-2")
BROKERS = ("stg-mq-1", "stg-mq-2", "stg-mq-3")
BROKER = BROKERS[0]  # the end of the operator's AMQP tunnel
WORKER = "stg-worker-1"
MONITORING = "stg-mon-1"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@cache
def contract() -> dict[str, Any]:
    """The shared names and ports (roles/hurtig/defaults/main.yml)."""
    return role_defaults("hurtig")


@cache
def secrets() -> dict[str, str]:
    """staging's example vault, decrypted with the example password."""
    vault = VaultLib([("example", VaultSecret(VAULT_PASSWORD.read_bytes().strip()))])
    return yaml.safe_load(vault.decrypt((STAGING / "group_vars" / "all" / "vault.yml").read_bytes()))


def api_key(client: str = "example-all") -> str:
    """An example client's API key (inventories/api-keys.example; staging's vault holds its hash)."""
    return str(_yaml(ROOT / "inventories" / "api-keys.example")["staging"][client])


def auth(client: str = "example-all") -> dict[str, str]:
    """The Authorization header of an example client."""
    return {"Authorization": f"Bearer {api_key(client)}"}


def function(name: str) -> dict[str, Any]:
    """A function of staging's list, with the contract's defaults (the hurtig_functions filter)."""
    path = ROOT / "plugins" / "filter" / "hurtig_functions.py"
    spec = importlib.util.spec_from_file_location("hurtig_functions", path)
    assert spec and spec.loader
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    functions = plugin.hurtig_functions(_yaml(STAGING / "group_vars" / "all" / "main.yml")["functions"])
    return next(f for f in functions if f["name"] == name)


def hosts() -> list[str]:
    """Every node of the stack (molecule/default/hosts.yml: staging's host names)."""
    return sorted(h for group in _yaml(SCENARIO / "hosts.yml")["all"]["children"].values() for h in group["hosts"])


def address(name: str) -> str:
    """A node's private address (molecule/default/hosts.yml)."""
    for group in _yaml(SCENARIO / "hosts.yml")["all"]["children"].values():
        if name in group["hosts"]:
            return group["hosts"][name]["private_address"]
    raise KeyError(name)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def role_defaults(role: str) -> dict[str, Any]:
    """A role's defaults (roles/<role>/defaults/main.yml)."""
    return _yaml(ROOT / "roles" / role / "defaults" / "main.yml")


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


def molecule_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MOLECULE_EPHEMERAL_DIRECTORY=str(EPHEMERAL),
        ANSIBLE_VAULT_IDENTITY_LIST=f"example@{VAULT_PASSWORD}",
        NO_COLOR="1",
        ANSIBLE_NOCOLOR="1",
        PY_COLORS="0",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    )
    return env


def molecule(action: str, *ansible_args: str, log: Path | None = None) -> float:
    """Run `molecule <action> -s default [-- ansible args]`; return its duration in seconds."""
    cmd = ["molecule", action, "-s", "default"]
    if ansible_args:
        cmd += ["--", *ansible_args]
    t0 = time.monotonic()
    with open(log or os.devnull, "a") as out:
        rc = subprocess.run(cmd, cwd=ROOT, env=molecule_env(), stdout=out, stderr=subprocess.STDOUT, check=False)
    if rc.returncode != 0:
        sys.exit(f"molecule {action} failed (rc={rc.returncode}); log: {log}")
    return time.monotonic() - t0


def converge(log: Path | None = None) -> float:
    if log:
        log.unlink(missing_ok=True)
    return molecule("converge", log=log)


def task_counts(log: Path) -> dict[str, int]:
    """Task rounds (TASK headers) and, summed over the hosts of the last play recap, the
    tasks that ran (ok, changed included) and those skipped, of a converge log."""
    text = log.read_text()
    recap = text[text.rfind("PLAY RECAP") :].splitlines()[1:]
    rows = [line for line in recap if " ok=" in line and not line.startswith("localhost")]

    def total(key: str) -> int:
        return sum(int(m) for line in rows for m in re.findall(rf"\b{key}=(\d+)", line))

    return {
        "task_rounds": text.count("\nTASK ["),
        "host_tasks_run": total("ok"),
        "host_tasks_changed": total("changed"),
        "host_tasks_skipped": total("skipped"),
    }


def run_playbook(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a playbook of playbooks/ against the stack as the scenario does (its inventory,
    ansible.cfg, vault password and overrides.yml)."""
    env = molecule_env()
    env["ANSIBLE_CONFIG"] = str(EPHEMERAL / "ansible.cfg")
    env["ANSIBLE_ROLES_PATH"] = str(ROOT / "roles")
    cmd = ["ansible-playbook", "-i", str(EPHEMERAL / "inventory"), "-e", f"@{SCENARIO / 'overrides.yml'}"]
    return subprocess.run(
        [*cmd, str(ROOT / "playbooks" / name), *args], env=env, capture_output=True, text=True, check=False
    )


def playbook(name: str, *args: str) -> float:
    """Run a playbook of playbooks/ against the stack; return its duration in seconds."""
    t0 = time.monotonic()
    out = run_playbook(name, *args)
    if out.returncode != 0:
        sys.exit(f"playbook {name} failed:\n{out.stdout[-3000:]}")
    return time.monotonic() - t0


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


@dataclass
class Load:
    """What a load run saw: every 202'd job id with the time its POST left the client."""

    accepted: dict[str, float] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def ssl_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test ingress has a self-signed certificate
    return ctx


Headers = Callable[[int], dict[str, str]]


async def _post_jobs(  # noqa: PLR0913
    n: int, rate: float, concurrency: int, function: str, payload: dict, *, headers: Headers | None = None
) -> Load:
    """n POSTs with the example client's key, or headers(i) over it for the i-th request."""
    load = Load()
    url = f"{INGRESS}/v1/functions/{function}/jobs"
    interval = 1.0 / rate if rate > 0 else 0.0
    start = time.monotonic()
    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=ssl_context())
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=auth()) as session:

        async def one(i: int) -> None:
            async with sem:
                sent = time.time()
                try:
                    extra = headers(i) if headers else None
                    async with session.post(url, json={**payload, "i": i}, headers=extra) as resp:
                        body = await resp.read()
                        load.statuses[str(resp.status)] += 1
                        if resp.status == 202:
                            load.accepted[json.loads(body)["job_id"]] = sent
                except (aiohttp.ClientError, TimeoutError) as exc:
                    load.statuses[type(exc).__name__] += 1

        tasks = []
        for i in range(n):
            if interval:  # open loop: send on schedule, whatever the answers do
                delay = start + i * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    load.seconds = time.monotonic() - start
    return load


def post_jobs(  # noqa: PLR0913
    n: int,
    rate: float = 0,
    concurrency: int = 32,
    function: str = "record",
    payload: dict | None = None,
    *,
    headers: Headers | None = None,
) -> Load:
    """POST n jobs through the ingress (rate 0: as fast as `concurrency` clients go)."""
    return asyncio.run(_post_jobs(n, rate, concurrency, function, payload or {}, headers=headers))


async def post_jobs_async(
    n: int, concurrency: int = 32, function: str = "record", *, headers: Headers | None = None
) -> Load:
    """post_jobs inside a running event loop (beside other load)."""
    return await _post_jobs(n, 0, concurrency, function, {}, headers=headers)


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
