"""site.yml's first step fails early, naming what the inventory lacks."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "tests" / "fixtures" / "inventory-missing"
EXAMPLE_PASSWORD = ROOT / "inventories" / "vault-password.example"
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
    assert "function sleep: missing required arguments: handler" in out.stdout


VAULT_ID = f"example@{ROOT / 'inventories' / 'vault-password.example'}"


def example_secrets(name: str) -> dict[str, str]:
    """The secrets (strings) of an example vault."""
    vault = VaultLib([("example", VaultSecret(EXAMPLE_PASSWORD.read_bytes().strip()))])
    path = ROOT / "inventories" / name / "group_vars" / "all" / "vault.yml"
    values = yaml.safe_load(vault.decrypt(path.read_bytes()))
    return {k: v for k, v in values.items() if isinstance(v, str)}  # the API keys are hashes already


@pytest.mark.parametrize("name", ["production", "staging"])
def test_the_example_inventories_pass_only_when_example_secrets_are_allowed(name):
    inv = ROOT / "inventories" / name
    out = run(inv, "--vault-id", VAULT_ID, "-e", "hurtig_allow_example_secrets=true")
    assert out.returncode == 0, out.stdout[-2000:]
    out = run(inv, "--vault-id", VAULT_ID)
    assert out.returncode != 0
    assert "rabbitmq_admin_password of" in out.stdout and "is the committed example value" in out.stdout
    for value in example_secrets(name).values():
        assert value not in out.stdout + out.stderr


@pytest.mark.parametrize("name", ["production", "staging"])
def test_the_example_vaults_are_labelled_and_listed(name):
    path = ROOT / "inventories" / name / "group_vars" / "all" / "vault.yml"
    assert path.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;example\n")
    listed = yaml.safe_load((ROOT / "playbooks" / "validate_inventory.yml").read_text())[0]["vars"]
    for key, value in example_secrets(name).items():
        assert hashlib.sha256(value.encode()).hexdigest() in listed["hurtig_example_secret_sha256"], key


def test_a_missing_secret_is_named_without_printing_values(tmp_path):
    inv = tmp_path / "inv"
    shutil.copytree(ROOT / "inventories" / "staging", inv)
    main = inv / "group_vars" / "all" / "main.yml"
    main.write_text(main.read_text().replace("worker_amqp_password:", "unused_worker_password:"))
    out = run(inv, "--vault-id", VAULT_ID, "-e", "hurtig_allow_example_secrets=true")
    assert out.returncode != 0
    assert "worker_amqp_password is not set for stg-worker-1" in out.stdout
    for value in example_secrets("staging").values():
        assert value not in out.stdout + out.stderr


def test_the_example_api_keys_are_listed_and_refused(tmp_path):
    listed = yaml.safe_load((ROOT / "playbooks" / "validate_inventory.yml").read_text())[0]["vars"]
    examples = yaml.safe_load((ROOT / "inventories" / "api-keys.example").read_text())
    for keys in examples.values():
        for key in keys.values():
            assert hashlib.sha256(key.encode()).hexdigest() in listed["hurtig_example_api_key_sha256"]
    # an inventory with real secrets but an example key is refused, naming the file
    inv = tmp_path / "inv"
    shutil.copytree(ROOT / "inventories" / "staging", inv)
    vault = inv / "group_vars" / "all" / "vault.yml"
    vault.unlink()
    main = inv / "group_vars" / "all" / "main.yml"
    text = main.read_text().replace('"{{ vault_', '"{{ real_')
    real = {f"real_{k[len('vault_') :]}": f"real-secret-{k}-0123456789" for k in example_secrets("staging")}
    digest = hashlib.sha256(examples["staging"]["example-record"].encode()).hexdigest()
    real["real_hurtig_api_keys"] = [{"name": "c", "sha256": digest, "functions": ["record"]}]
    main.write_text(text + yaml.safe_dump(real))
    out = run(inv)
    assert out.returncode != 0
    assert "holds an example key (inventories/api-keys.example)" in out.stdout, out.stdout[-2000:]
    # a key for a function that does not exist is named
    real["real_hurtig_api_keys"] = [{"name": "c", "sha256": "a" * 64, "functions": ["nope"]}]
    main.write_text(text + yaml.safe_dump(real))
    out = run(inv)
    assert out.returncode != 0 and "no function named nope in the functions list" in out.stdout, out.stdout[-2000:]
