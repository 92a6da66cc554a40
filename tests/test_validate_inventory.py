"""site.yml's first step fails early, naming what the inventory lacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "tests" / "fixtures" / "inventory-missing"
WORKERS = "    workers:\n      hosts:\n        w-1: {private_address: 192.0.2.31}\n"


def run(inventory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(inventory),
            str(ROOT / "playbooks" / "validate_inventory.yml"),
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def test_missing_group_is_named():
    out = run(BROKEN)
    assert out.returncode != 0
    assert "inventory group 'workers' is missing or empty" in out.stdout


def test_host_without_private_address_is_named(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text((BROKEN / "hosts.yml").read_text() + WORKERS)
    (tmp_path / "group_vars").symlink_to(BROKEN / "group_vars")
    out = run(inv)
    assert out.returncode != 0
    assert "host api-1 has no private_address" in out.stdout


def test_function_without_handler_is_named(tmp_path):
    inv = tmp_path / "hosts.yml"
    text = (BROKEN / "hosts.yml").read_text().replace("api-1: {}", "api-1: {private_address: 192.0.2.2}")
    inv.write_text(text + WORKERS)
    (tmp_path / "group_vars").symlink_to(BROKEN / "group_vars")
    out = run(inv)
    assert out.returncode != 0
    assert "functions entry sleep lacks handler" in out.stdout


def test_the_example_inventories_pass():
    for name in ("production", "staging"):
        out = run(
            ROOT / "inventories" / name,
            "--vault-password-file",
            str(ROOT / "inventories" / "vault-password.example"),
        )
        assert out.returncode == 0, out.stdout[-2000:]
