"""What the full-stack test modules share: the staging stack as bench/stack.py reaches it,
its queues (as the admin sees them) and its playbooks (which must succeed)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "molecule" / "resources" / "tests"))
import stack  # noqa: E402
from helpers import queue_state, wait_for  # noqa: E402

__all__ = ["AUTH", "INGRESS", "ROOT", "playbook", "queue", "stack", "wait_for"]

INGRESS = stack.INGRESS
AUTH = stack.auth()  # staging's example client for every function (inventories/api-keys.example)


def queue(name: str) -> tuple[int, int]:
    return queue_state(stack.amqp_admin_params(), name)


def playbook(name: str, *args: str) -> str:
    out = stack.run_playbook(name, *args)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout
