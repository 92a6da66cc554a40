"""Ansible against staging's stack as the default scenario runs it: Molecule's actions, the
lifecycle playbooks with the scenario's inventory and overrides, a converge log's task
counts (part of bench/stack.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from stack_inventory import EPHEMERAL, ROOT, SCENARIO, VAULT_PASSWORD


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
