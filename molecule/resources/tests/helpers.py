"""Helpers the Molecule verifiers share. A test module puts this folder on sys.path:

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
"""

from __future__ import annotations

import importlib.util
import os
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pika
import pytest

from hurtig import amqp

ROOT = Path(__file__).resolve().parents[3]
TLS_CACHE = ROOT / ".cache" / "tls"


def tls_files(node: str, directory: str, read: Callable[[str], str] | None = None) -> Path:
    """A copy of a node's AMQPS files (ca.pem, cert.pem, key.pem of role hurtig's tls.yml)
    in .cache/tls/<node>/, read with `docker exec` or the given reader (SSH for the stack)."""
    dest = TLS_CACHE / node
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        text = (
            read(f"{directory}/{name}")
            if read
            else subprocess.run(
                ["docker", "exec", node, "cat", f"{directory}/{name}"], check=True, capture_output=True, text=True
            ).stdout
        )
        path = dest / name
        path.touch(mode=0o600)
        path.write_text(text)
    return dest


def tls_options(files: Path | None, server_hostname: str, client_cert: bool = True) -> pika.SSLOptions:
    """pika's TLS options with the API's and workers' context (hurtig.amqp.ssl_context): the
    broker's certificate and name checked against the CA (files=None: the system's CAs
    only), the client's certificate presented unless client_cert is false."""
    if files is None:
        return pika.SSLOptions(ssl.create_default_context(), server_hostname=server_hostname)
    cert, key = (str(files / "cert.pem"), str(files / "key.pem")) if client_cert else (None, None)
    return pika.SSLOptions(
        amqp.ssl_context(amqp.Tls(str(files / "ca.pem"), cert, key)), server_hostname=server_hostname
    )


def broker_password(secret: str, user: str) -> str:
    """A function's broker user password, derived from the secret as the roles derive it."""
    path = ROOT / "plugins" / "filter" / "hurtig_broker_users.py"
    spec = importlib.util.spec_from_file_location("hurtig_broker_users", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.hurtig_broker_password(secret, user)


def wait_for(predicate: Callable[[], bool], timeout: float = 60, interval: float = 1.0) -> None:
    """Poll until predicate() is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"condition not reached in {timeout:.0f} s")


def queue_state(params: pika.ConnectionParameters | pika.URLParameters, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue, read with a passive declare."""
    conn = pika.BlockingConnection(params)
    try:
        ok = conn.channel().queue_declare(queue, passive=True).method
        return ok.message_count, ok.consumer_count
    finally:
        conn.close()


def drain_queue(conn: pika.BlockingConnection, queue: str) -> list[str]:
    """Get and ack every message of the queue; their message ids. Closes the connection."""
    ch = conn.channel()
    got = []
    try:
        while True:
            method, props, _ = ch.basic_get(queue)
            if method is None:
                return got
            got.append(props.message_id)
            ch.basic_ack(method.delivery_tag)
    finally:
        conn.close()


def run_playbook(path: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a playbook against this scenario's instances (Molecule's inventory and config)."""
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.cfg")
    env["ANSIBLE_ROLES_PATH"] = str(ROOT / "roles")
    env["ANSIBLE_NOCOLOR"], env["ANSIBLE_FORCE_COLOR"] = "1", "0"  # output the tests parse
    return subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(path), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def playbook(path: str | Path, *args: str) -> str:
    """run_playbook, which must succeed; its output."""
    out = run_playbook(path, *args)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def pending_security_updates(host) -> list[str]:
    """The installed packages for which Debian's security suite has a newer version, after
    refreshing the package lists: known vulnerabilities, fixed and not installed. That is
    what `debsecan --only-fixed` reports of Debian's security advisories; its own data comes
    from security-tracker.debian.org, which these machines cannot resolve."""
    sudo = "" if host.user().name == "root" else "sudo -n "
    host.run_expect([0], f"{sudo}apt-get update -qq")
    return security_updates(host.check_output(f"{sudo}apt-get -s -o Debug::NoLocking=1 dist-upgrade"))


def security_updates(plan: str) -> list[str]:
    """The packages an `apt-get -s dist-upgrade` plan would install from a security suite:
    Inst curl [8.14.1-2+deb13u6] (8.14.1-2+deb13u7 Debian-Security:13/stable-security [amd64])"""
    return sorted(line.split()[1] for line in plan.splitlines() if line.startswith("Inst ") and "-security" in line)
