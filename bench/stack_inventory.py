"""Staging's stack as its inventory and the scenario describe it: paths, the ingress's
address, the nodes' names and private addresses, the shared contract, the example vault's
secrets and API keys, a function with its defaults (part of bench/stack.py)."""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "molecule" / "default"
STAGING = ROOT / "inventories" / "staging"
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY") or ROOT / ".cache" / "stack")
VAULT_PASSWORD = ROOT / "inventories" / "vault-password.example"
INGRESS_PORT = 28443
INGRESS = f"https://127.0.0.1:{INGRESS_PORT}"

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


def role_defaults(role: str) -> dict[str, Any]:
    """A role's defaults (roles/<role>/defaults/main.yml)."""
    return _yaml(ROOT / "roles" / role / "defaults" / "main.yml")
