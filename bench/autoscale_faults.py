"""Faults of the autoscaler under a burst (a phase of bench/chaos.py: `autoscale_faults`).

Staging's `burst` (1..6 replicas), one fault per burst of jobs posted through the ingress:

- controller_kill9: the controller's process killed (kill -9) while it scales out: the
  containers it started keep running, Docker restarts it, it resumes up to max;
- broker_unreachable_10s: the worker node cut from every broker for 10 s (nftables) at max:
  the controller changes nothing while it cannot read the queue;
- docker_restart: the node's Docker daemon restarted mid-burst (live-restore): the
  controller, its containers and their jobs survive, and it still scales in afterwards.

Per fault: accepted, lost (accepted, never logged done by a worker), and what the fault
must not change. Run it alone: python bench/chaos.py --only autoscale_faults
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable

import autoscale
import stack

JOB = {"ms": 500}
Cut = Callable[[float, Callable[[], None]], None]  # faults.cut_network


def running() -> int:
    out = stack.node(stack.WORKER, "docker", "ps", "-q", "--filter", f"label=org.hurtig.function={autoscale.FUNCTION}")
    return len(out.split())


def restarts() -> int:
    return int(stack.node(stack.WORKER, "docker", "inspect", "-f", "{{.RestartCount}}", "hurtig-autoscaler"))


def _lost(accepted: set[str]) -> int:
    with contextlib.suppress(TimeoutError):
        stack.wait_for(lambda: accepted <= autoscale.done_jobs(), 120, "every burst job done", 1)
    return len(accepted - autoscale.done_jobs())


def controller_kill9(sampler: autoscale.Sampler, minimum: int, maximum: int) -> dict:
    autoscale.idle(sampler, minimum)
    before = restarts()
    load = stack.post_jobs(60, concurrency=32, function=autoscale.FUNCTION, payload=JOB)
    sampler.until(lambda _r, c: c > minimum, 30, "scaling out")
    at_kill = running()
    pid = stack.node(stack.WORKER, "docker", "inspect", "-f", "{{.State.Pid}}", "hurtig-autoscaler").strip()
    stack.node(stack.WORKER, "kill", "-9", pid)
    after_kill = running()
    stack.wait_for(lambda: restarts() > before, 30, "the controller restarted")
    reached = sampler.until(lambda _r, c: c == maximum, 30, "max after the restart") >= 0
    return {"accepted": len(load.accepted), "lost": _lost(set(load.accepted)), "running_at_kill": at_kill,
            "running_after_kill": after_kill, "restarted": restarts() > before, "resumed_to_max": reached,
            "ok": after_kill >= at_kill and reached}  # fmt: skip


def broker_unreachable(sampler: autoscale.Sampler, minimum: int, maximum: int, cut: Cut) -> dict:
    load = stack.post_jobs(120, concurrency=32, function=autoscale.FUNCTION, payload=JOB)
    sampler.until(lambda _r, c: c == maximum, 30, "max")
    before = running()
    seen = []
    cut(10, lambda: seen.append(running()))
    return {"accepted": len(load.accepted), "lost": _lost(set(load.accepted)), "running_before": before,
            "running_during_cut": sorted(set(seen)), "ok": set(seen) <= {before}}  # fmt: skip


def docker_restart(sampler: autoscale.Sampler, minimum: int, maximum: int) -> dict:
    load = stack.post_jobs(60, concurrency=32, function=autoscale.FUNCTION, payload=JOB)
    before = running()
    stack.node(stack.WORKER, "systemctl", "restart", "docker")
    up = ("sh", "-c", "docker info >/dev/null 2>&1 && echo up")
    stack.wait_for(lambda: stack.node(stack.WORKER, *up, check=False).strip() == "up", 60, "docker back", 0.5)
    after = running()
    lost = _lost(set(load.accepted))
    t0 = time.monotonic()
    scale_in = sampler.until(lambda _r, c: c < after, 90, "a scale-in after the restart") >= 0
    return {"accepted": len(load.accepted), "lost": lost, "running_before": before, "running_after": after,
            "scaled_in_after_s": round(time.monotonic() - t0, 1), "ok": after >= before and scale_in}  # fmt: skip


def run(cut: Cut) -> dict:
    scale = stack.function(autoscale.FUNCTION)["autoscale"]
    sampler = autoscale.Sampler()
    out = {}
    faults = {
        "controller_kill9": controller_kill9,
        "broker_unreachable_10s": lambda *a: broker_unreachable(*a, cut=cut),
        "docker_restart": docker_restart,
    }
    try:
        for name, fault in faults.items():
            try:
                out[name] = fault(sampler, scale["min"], scale["max"])
            except TimeoutError as exc:
                out[name] = {"lost": None, "ok": False, "error": str(exc)}
            print(f"[chaos] autoscale {name}: {json.dumps(out[name])}", flush=True)
    finally:
        sampler.close()
    return out
