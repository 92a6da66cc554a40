"""CPU seconds spent by each part of a benchmark: each stack container (its cgroup, read on
this host: cgroup v1 cpuacct or v2 cpu.stat) and each container its Docker engine runs (the
API and worker nodes run theirs inside: their cgroups sit beside the node's, not in it),
this process, and its finished children (load clients run as separate processes). Take a
snapshot before and after, and subtract."""

from __future__ import annotations

import contextlib
import resource
import subprocess
import time
from functools import cache
from pathlib import Path


@cache
def _container_id(name: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True, check=True
    ).stdout.strip()


def _inner(node: str) -> dict[str, str]:
    """The containers a node's own Docker engine runs: {name: id}; none without an engine."""
    out = subprocess.run(
        ["docker", "exec", node, "docker", "ps", "--no-trunc", "--format", "{{.Names}} {{.ID}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return dict(line.split() for line in out.stdout.splitlines()) if out.returncode == 0 else {}


def container_seconds(name: str, cid: str | None = None) -> float:
    """CPU seconds a container has used since it started."""
    cid = cid or _container_id(name)
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text()) / 1e9
    for v2 in (
        Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat"),
        Path(f"/sys/fs/cgroup/docker/{cid}/cpu.stat"),
    ):
        if v2.exists():
            usage = dict(line.split() for line in v2.read_text().splitlines())
            return int(usage["usage_usec"]) / 1e6
    raise FileNotFoundError(f"no cgroup CPU accounting found for container {name}")


def snapshot(containers: list[str]) -> dict[str, float]:
    """Cumulative CPU seconds: each container, this process, its waited-for children; and the
    wall clock."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {name: container_seconds(name) for name in containers}
    for node in containers:
        for name, cid in _inner(node).items():
            with contextlib.suppress(FileNotFoundError):  # it stopped since `docker ps`
                out[f"{node}/{name}"] = container_seconds(name, cid)
    out["this process"] = time.process_time()
    out["child processes"] = children.ru_utime + children.ru_stime
    out["wall"] = time.monotonic()
    return out


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per part between two snapshots (the parts in both), and `wall` seconds."""
    return {k: round(after[k] - before[k], 3) for k in before if k in after}


def machine_ticks() -> list[int]:
    """The machine's CPU ticks since boot (/proc/stat): user, nice, system, idle, iowait, irq,
    softirq, steal."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def _busy(d: list[int]) -> float:
    """The busy share of machine_ticks() deltas, iowait counted idle."""
    return (sum(d) - d[3] - d[4]) / max(1, sum(d))


def machine_shares(before: list[int], after: list[int]) -> dict[str, float]:
    """The whole machine between two machine_ticks(): the share of its CPU time that was busy,
    and the share in interrupts (irq, softirq). Without IRQ_TIME_ACCOUNTING (this kernel), a
    cgroup's CPU time includes the interrupts that land on its tasks: on a saturated machine
    a busy process takes others' (a broker's disk completions), on an idle one the idle task
    takes them (docs/benchmarks.md, "Time in interrupts")."""
    d = [a - b for a, b in zip(after, before, strict=True)]
    return {"busy": round(_busy(d), 3), "interrupts": round((d[5] + d[6]) / max(1, sum(d)), 3)}


def settle(limit: float = 0.15, window: float = 5.0, timeout: float = 300.0) -> dict[str, float]:
    """Wait until the whole machine is at most `limit` busy over `window` seconds (earlier
    cases' backlogs processed, autoscaled replicas stopped), as it was for a first converge.
    Returns the seconds waited and the busy share of the last window."""
    t0 = time.monotonic()
    while True:
        before = machine_ticks()
        time.sleep(window)
        busy = _busy([a - b for a, b in zip(machine_ticks(), before, strict=True)])
        if busy <= limit or time.monotonic() - t0 > timeout:
            return {"waited_s": round(time.monotonic() - t0, 1), "busy": round(busy, 3)}
