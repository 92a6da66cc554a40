"""The worker containers of one node, and the autoscaler's view of them.

worker_containers(functions, groups, host, prefix): one entry per container the node keeps,
{name, function, index, state}: `replicas` of a function without `autoscale`, all started;
of an autoscaled function, the node's share of `max`, created in advance so that starting
one is all a scale-out takes, the share of `min` of them started (the controller starts and
stops the others). Node k of the n hosts of the function's group (inventory order) has
total // n, plus one if k < total % n: the rule of hurtig.autoscale.share, which the
controller applies to its totals (tests/test_worker_containers.py checks both agree).

worker_autoscale_config(containers, stop_grace): what the controller (hurtig-autoscaler,
HURTIG_AUTOSCALE_FUNCTIONS) needs of each autoscaled function of the node.

worker_container_specs(containers, settings): per container, every argument of its
community.docker.docker_container task (`args`; the task passes nothing else) and a `digest`
of them but the state, which the container carries as its label SETTINGS_LABEL. A re-run
skips a container that has the digest it asks for and is in the state it asks for
(worker_containers_to_run): the node's containers, not a file beside them, say what was applied.

worker_stale_containers(running, desired, only_function): the worker containers on the node
that no function asks for (a removed function, replicas scaled away); with only_function,
only that function's.

worker_rescaled(functions, name, replicas, bounds): the functions list with one function's
replica count, or an autoscaled one's bounds (min, max), replaced (playbooks/scale.yml).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ansible.errors import AnsibleFilterError

# The label with the digest of a container's settings (a changed digest changes the label:
# Docker recreates the container, as it would for most settings anyway)
SETTINGS_LABEL = "org.hurtig.settings"


def _share(total: int, index: int, count: int) -> int:
    return total // count + (1 if index < total % count else 0)


def _place(fn: dict[str, Any], groups: dict[str, list[str]], host: str) -> tuple[int, int]:
    hosts = list(groups.get(fn["group"], []))
    if host not in hosts:
        raise AnsibleFilterError(
            f"worker_containers: {host} is not in the group {fn['group']} of function {fn['name']}"
        )
    return hosts.index(host), len(hosts)


def worker_containers(functions: list[dict[str, Any]], groups: dict[str, list[str]], host: str,
                      prefix: str) -> list[dict[str, Any]]:  # fmt: skip
    out = []
    for fn in functions:
        scale = fn.get("autoscale")
        if scale:
            k, n = _place(fn, groups, host)
            count, started = _share(scale["max"], k, n), _share(scale["min"], k, n)
        else:
            count = started = fn["replicas"]
        for i in range(1, count + 1):
            out.append({"name": f"{prefix}-{fn['name']}-{i}", "function": fn, "index": i,
                        "state": "started" if i <= started else "present"})  # fmt: skip
    return out


def worker_autoscale_config(containers: list[dict[str, Any]], groups: dict[str, list[str]], host: str,
                            stop_grace: int) -> list[dict[str, Any]]:  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    for c in containers:
        fn = c["function"]
        if not fn.get("autoscale"):
            continue
        if fn["name"] not in out:
            k, n = _place(fn, groups, host)
            out[fn["name"]] = {"name": fn["name"], "queue": fn["queue"], "prefetch": fn["prefetch"],
                               **{key: fn["autoscale"][key] for key in
                                  ("min", "max", "target_backlog_per_replica", "scale_in_after_s")},
                               "stop_timeout_s": fn["timeout"] + int(stop_grace), "node_index": k, "node_count": n,
                               "containers": []}  # fmt: skip
        out[fn["name"]]["containers"].append(c["name"])
    return list(out.values())


# Where a worker container writes its figures (the node's worker_metrics_dir; hurtig.worker_metrics).
METRICS_TARGET = "/var/lib/hurtig-metrics"


def _mounts(fn: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
    mounts = [
        {"type": "bind", "source": f"{settings['secret_dir']}/{fn['broker_user']}", "target": "/run/secrets/hurtig",
         "read_only": True},
        {"type": "bind", "source": settings["output_dir"], "target": "/data/out"},
        {"type": "bind", "source": settings["metrics_dir"], "target": METRICS_TARGET},
    ]  # fmt: skip
    mounts += [{"source": d, "target": d, "type": "bind", "read_only": True} for d in fn.get("input_dirs", [])]
    if settings["tls"]:
        mounts.append(
            {"type": "bind", "source": settings["tls_dir"], "target": "/run/secrets/hurtig-tls", "read_only": True}
        )
    return mounts


def _env(fn: dict[str, Any], settings: dict[str, Any]) -> dict[str, str]:
    tls = settings["tls"]
    env = {
        "HURTIG_AMQP_URLS": settings["amqp_urls"].replace("{user}", fn["broker_user"]),
        "HURTIG_AMQP_PASSWORD_FILE": "/run/secrets/hurtig/amqp.password",
        "HURTIG_AMQP_CA_FILE": "/run/secrets/hurtig-tls/ca.pem" if tls else "",
        "HURTIG_AMQP_CERT_FILE": "/run/secrets/hurtig-tls/cert.pem" if tls else "",
        "HURTIG_AMQP_KEY_FILE": "/run/secrets/hurtig-tls/key.pem" if tls else "",
        "HURTIG_FUNCTION": fn["name"],
        "HURTIG_QUEUE": fn["queue"],
        "HURTIG_HANDLER": fn["handler"],
        "HURTIG_PREFETCH": str(fn["prefetch"]),
        "HURTIG_MAX_RETRIES": str(fn["max_retries"]),
        "HURTIG_TIMEOUT": str(fn["timeout"]),
        "HURTIG_STOP_GRACE": str(fn["timeout"] + int(settings["stop_grace"]) - 2),
        "HURTIG_RETRY_EXCHANGE": settings["retry_exchange"],
        "HURTIG_DEAD_EXCHANGE": settings["dead_exchange"],
        "HURTIG_OUTPUT_DIR": "/data/out",
        "HURTIG_INPUT_DIRS": ":".join(fn.get("input_dirs", [])),
        "HURTIG_LOG_LEVEL": settings["log_level"],
        "HURTIG_METRICS_DIR": METRICS_TARGET,
    }
    return {**env, **{k: str(v) for k, v in (settings.get("extra_env") or {}).items()}}


def worker_container_specs(containers: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for c in containers:
        fn = c["function"]
        args = {
            "name": c["name"],
            "image": settings["image"],
            "command": ["hurtig-worker"],
            "state": c["state"],
            "restart_policy": settings["restart_policy"],
            "user": "10001:10001",
            "read_only": True,
            "tmpfs": ["/tmp"],
            "security_opts": ["no-new-privileges:true"],
            "cap_drop": ["ALL"],
            "memory": str(fn.get("memory", settings["memory"])),
            "cpus": float(fn.get("cpus", settings["cpus"])),
            "stop_signal": "SIGTERM",
            "stop_timeout": fn["timeout"] + int(settings["stop_grace"]),
            "env": {**_env(fn, settings), "HURTIG_METRICS_NAME": c["name"]},
            "mounts": _mounts(fn, settings),
            "healthcheck": {"test": ["CMD", "python3", "-m", "hurtig.health", "worker"], "interval": "15s", "timeout": "5s",
                            "retries": 3, "start_period": "30s"},
            "labels": {"org.hurtig.role": "worker", "org.hurtig.function": fn["name"],
                       "org.hurtig.replica": str(c["index"])},
            "comparisons": {"env": "strict", "labels": "strict"},
        }  # fmt: skip
        # not the state: a replica of an autoscaled function that is to be started, or only
        # created, is the same container (the autoscaler starts and stops it)
        text = json.dumps({k: v for k, v in args.items() if k != "state"}, sort_keys=True)
        digest = hashlib.sha1(text.encode()).hexdigest()
        args["labels"][SETTINGS_LABEL] = digest
        out.append({"name": c["name"], "state": c["state"], "args": args, "digest": digest})
    return out


def worker_containers_to_run(specs: list[dict[str, Any]], running: Any) -> list[dict[str, Any]]:
    """The specs whose task must run: missing from the node, labelled with another digest
    (or none), or not running where they should (a `present` one, which the autoscaler
    starts and stops, only has to exist). `running`: community.docker.docker_host_info's
    result, with verbose_output."""
    state = {}
    for c in (running or {}).get("containers") or []:
        for name in c.get("Names") or []:
            state[name.lstrip("/")] = (c.get("State", ""), (c.get("Labels") or {}).get(SETTINGS_LABEL))
    return [
        s for s in specs
        if s["name"] not in state or state[s["name"]][1] != s["digest"]
        or (s["state"] == "started" and state[s["name"]][0] != "running")
    ]  # fmt: skip


def worker_stale_containers(running: Any, desired: list[dict[str, Any]], only_function: str = "") -> list[str]:
    keep = {c["name"] for c in desired}
    out = []
    for c in (running or {}).get("containers") or []:
        name = (c.get("Names") or [""])[0].lstrip("/")
        function = (c.get("Labels") or {}).get("org.hurtig.function", "")
        if name not in keep and (not only_function or function == only_function):
            out.append(name)
    return out


def worker_rescaled(functions: list[dict[str, Any]], name: str, replicas: Any = None,
                    bounds: dict[str, Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    def rescale(fn: dict[str, Any]) -> dict[str, Any]:
        if fn["name"] != name:
            return fn
        if "autoscale" in fn:
            return {**fn, "autoscale": {**fn["autoscale"], **(bounds or {})}}
        return {**fn, "replicas": int(replicas)}

    return [rescale(fn) for fn in functions]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "worker_containers": worker_containers,
            "worker_autoscale_config": worker_autoscale_config,
            "worker_container_specs": worker_container_specs,
            "worker_containers_to_run": worker_containers_to_run,
            "worker_stale_containers": worker_stale_containers,
            "worker_rescaled": worker_rescaled,
        }
