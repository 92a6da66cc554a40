"""Helpers the Molecule verifiers share. A test module puts this folder on sys.path:

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pika
import pytest

ROOT = Path(__file__).resolve().parents[3]


def broker_password(secret: str, user: str) -> str:
    """A function's broker user password, derived from the secret as the roles derive it."""
    path = ROOT / "roles" / "hurtig" / "filter_plugins" / "hurtig_broker_users.py"
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
