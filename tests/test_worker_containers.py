"""The worker role's containers per node, autoscaled ones included (filter worker_containers)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from conftest import load_plugin

from hurtig.autoscale import share

plugin = load_plugin("filter", "worker_containers")
check = load_plugin("filter", "hurtig_functions").hurtig_functions
GROUPS = {"workers": ["w1", "w2", "w3"]}


def test_fixed_replicas_all_started():
    fns = check([{"name": "a", "handler": "m:f", "replicas": 2}])
    got = plugin.worker_containers(fns, GROUPS, "w2", "hurtig")
    assert [(c["name"], c["state"]) for c in got] == [("hurtig-a-1", "started"), ("hurtig-a-2", "started")]
    assert plugin.worker_autoscale_config(got, GROUPS, "w2", 10) == []


def test_autoscaled_share_of_max_created_share_of_min_started():
    fns = check([{"name": "b", "handler": "m:f", "timeout": 30, "prefetch": 2,
                  "autoscale": {"min": 2, "max": 8, "scale_in_after_s": 20}}])  # fmt: skip
    per_node = {h: plugin.worker_containers(fns, GROUPS, h, "hurtig") for h in GROUPS["workers"]}
    assert [len(v) for v in per_node.values()] == [3, 3, 2]  # 8 over three nodes
    assert [[c["state"] for c in v].count("started") for v in per_node.values()] == [1, 1, 0]  # min 2
    [cfg] = plugin.worker_autoscale_config(per_node["w3"], GROUPS, "w3", 10)
    assert cfg == {"name": "b", "queue": "jobs.b", "prefetch": 2, "min": 2, "max": 8, "target_backlog_per_replica": 5,
                   "scale_in_after_s": 20, "stop_timeout_s": 40, "node_index": 2, "node_count": 3,
                   "containers": ["hurtig-b-1", "hurtig-b-2"]}  # fmt: skip


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_the_role_creates_what_the_controller_will_ask_for(count):
    for total in range(0, 25):
        assert [plugin._share(total, k, count) for k in range(count)] == [share(total, k, count) for k in range(count)]


def test_a_host_outside_the_group_is_an_error():
    fns = check([{"name": "b", "handler": "m:f", "autoscale": {"max": 2}}])
    with pytest.raises(AnsibleFilterError, match="w9 is not in the group workers"):
        plugin.worker_containers(fns, GROUPS, "w9", "hurtig")


SETTINGS = {
    "image": "hurtig/runtime:trixie-abc", "restart_policy": "unless-stopped", "memory": "256m", "cpus": 1.0,
    "stop_grace": 10, "amqp_urls": "amqps://{user}:{password}@10.0.0.1:5671/hurtig", "tls": True,
    "secret_dir": "/etc/hurtig/worker", "output_dir": "/var/lib/hurtig/output", "tls_dir": "/etc/hurtig/worker-tls",
    "retry_exchange": "hurtig.retry", "dead_exchange": "hurtig.dead", "log_level": "INFO", "extra_env": {},
    "metrics_dir": "/var/lib/hurtig/worker-metrics",
}  # fmt: skip


def specs(fns: list[dict], **settings: object) -> list[dict]:
    return plugin.worker_container_specs(plugin.worker_containers(check(fns), GROUPS, "w1", "hurtig"),
                                         {**SETTINGS, **settings})  # fmt: skip


def test_container_arguments_from_the_function_and_the_role():
    [a] = specs([{"name": "a", "handler": "m:f", "timeout": 30, "memory": "1g", "input_dirs": ["/srv/in"]}])
    args = a["args"]
    assert (args["name"], args["state"], args["memory"], args["cpus"], args["stop_timeout"]) == (
        "hurtig-a-1",
        "started",
        "1g",
        1.0,
        40,
    )
    assert args["env"]["HURTIG_AMQP_URLS"] == "amqps://hurtig-worker-a:{password}@10.0.0.1:5671/hurtig"
    assert (args["env"]["HURTIG_STOP_GRACE"], args["env"]["HURTIG_INPUT_DIRS"]) == ("38", "/srv/in")
    assert {"type": "bind", "source": "/srv/in", "target": "/srv/in", "read_only": True} in args["mounts"]
    assert args["mounts"][-1]["target"] == "/run/secrets/hurtig-tls"
    assert args["labels"] == {"org.hurtig.role": "worker", "org.hurtig.function": "a", "org.hurtig.replica": "1",
                              plugin.SETTINGS_LABEL: a["digest"]}  # fmt: skip
    # its figures go to the node's metrics directory, under its own name (hurtig.worker_metrics)
    assert {"type": "bind", "source": "/var/lib/hurtig/worker-metrics", "target": "/var/lib/hurtig-metrics"} in args[
        "mounts"
    ]
    assert (args["env"]["HURTIG_METRICS_DIR"], args["env"]["HURTIG_METRICS_NAME"]) == (
        "/var/lib/hurtig-metrics",
        "hurtig-a-1",
    )
    [plain] = specs([{"name": "a", "handler": "m:f"}], tls=False, extra_env={"HURTIG_LOG_LEVEL": "DEBUG", "X": 1})
    assert plain["args"]["env"]["HURTIG_AMQP_CA_FILE"] == ""
    assert (plain["args"]["env"]["HURTIG_LOG_LEVEL"], plain["args"]["env"]["X"]) == ("DEBUG", "1")  # extra wins
    assert all(m["target"] != "/run/secrets/hurtig-tls" for m in plain["args"]["mounts"])


def test_the_digest_changes_with_any_argument_but_the_state():
    fn = {"name": "a", "handler": "m:f"}
    [base] = specs([fn])
    assert specs([fn])[0]["digest"] == base["digest"]
    for other in (specs([{**fn, "prefetch": 2}]), specs([fn], image="hurtig/runtime:trixie-def"),
                  specs([fn], extra_env={"X": "1"}), specs([fn], memory="512m")):  # fmt: skip
        assert other[0]["digest"] != base["digest"]
    # a replica of an autoscaled function keeps its digest whether it is to run or only exist
    auto = {"name": "b", "handler": "m:f", "autoscale": {"min": 3, "max": 6}}  # w1: 2 of 6, 1 of min 3
    [_, created] = specs([auto])
    [_, started] = specs([{**auto, "autoscale": {"min": 6, "max": 6}}])
    assert (created["state"], started["state"]) == ("present", "started")
    assert created["digest"] == started["digest"]


def test_the_container_task_passes_every_argument_from_the_spec_and_nothing_else():
    """The digest covers what the task passes to Docker only if the task passes item.args alone."""
    tasks = yaml.safe_load((Path(__file__).parents[1] / "roles/worker/tasks/main.yml").read_text())
    [task] = [t for t in tasks if "worker_containers_to_run" in str(t.get("loop", ""))]
    params = task["community.docker.docker_container"]
    assert params == {k: f"{{{{ item.args.{k} }}}}" for k in specs([{"name": "a", "handler": "m:f"}])[0]["args"]}


def running(*containers: tuple[str, str], digests: dict[str, str] | None = None) -> dict:
    return {"containers": [{"Names": [f"/{n}"], "State": s, "Labels": {plugin.SETTINGS_LABEL: (digests or {}).get(n)}}
                           for n, s in containers]}  # fmt: skip


def test_only_containers_without_their_digest_or_state_go_through_their_task():
    fns = [{"name": "a", "handler": "m:f", "replicas": 2}]
    s = specs(fns)
    d = {c["name"]: c["digest"] for c in s}
    to_run = plugin.worker_containers_to_run
    assert to_run(s, running(("hurtig-a-1", "running"), ("hurtig-a-2", "running"), digests=d)) == []
    assert to_run(s, running(("hurtig-a-1", "running"), digests=d)) == s[1:]  # removed by hand
    assert to_run(s, running(("hurtig-a-1", "running"), ("hurtig-a-2", "exited"), digests=d)) == s[1:]  # stopped
    old = {**d, "hurtig-a-2": "old"}
    assert to_run(s, running(("hurtig-a-1", "running"), ("hurtig-a-2", "running"), digests=old)) == s[1:]
    assert to_run(s, running(("hurtig-a-1", "running"), ("hurtig-a-2", "running"))) == s  # no label: made before 2.0.0
    assert to_run(s, {}) == s


def test_a_created_container_of_an_autoscaled_function_only_has_to_exist():
    s = specs([{"name": "b", "handler": "m:f", "autoscale": {"min": 3, "max": 6}}])  # w1: 2 of 6, 1 of min 3
    d = {c["name"]: c["digest"] for c in s}
    assert [c["state"] for c in s] == ["started", "present"]
    assert (
        plugin.worker_containers_to_run(s, running(("hurtig-b-1", "running"), ("hurtig-b-2", "created"), digests=d))
        == []
    )
    assert (
        plugin.worker_containers_to_run(s, running(("hurtig-b-1", "exited"), ("hurtig-b-2", "running"), digests=d))
        == s[:1]
    )


def test_stale_containers_are_those_no_function_asks_for():
    def c(name: str, function: str) -> dict:
        return {"Names": [f"/{name}"], "Labels": {"org.hurtig.role": "worker", "org.hurtig.function": function}}

    names = [("hurtig-a-1", "a"), ("hurtig-a-3", "a"), ("hurtig-gone-1", "gone"), ("hurtig-b-2", "b")]
    running = {"containers": [c(*n) for n in names]}
    desired = [{"name": "hurtig-a-1"}, {"name": "hurtig-b-1"}]
    assert plugin.worker_stale_containers(running, desired, "") == ["hurtig-a-3", "hurtig-gone-1", "hurtig-b-2"]
    # a scale of one function leaves the others' containers alone
    assert plugin.worker_stale_containers(running, desired, "a") == ["hurtig-a-3"]
    assert plugin.worker_stale_containers({}, desired, "") == []


def test_a_scale_changes_one_function_only():
    auto = {"min": 1, "max": 4, "scale_in_after_s": 20}
    fns = check([{"name": "a", "handler": "m:f", "replicas": 2}, {"name": "b", "handler": "m:f", "autoscale": auto}])
    got = plugin.worker_rescaled(fns, "a", "6", {})
    assert [f.get("replicas") for f in got] == [6, fns[1].get("replicas")] and got[1] == fns[1]
    got = plugin.worker_rescaled(fns, "b", None, {"min": 2, "max": 9})
    assert got[0] == fns[0] and got[1]["autoscale"] == {**fns[1]["autoscale"], "min": 2, "max": 9}
    assert fns[1]["autoscale"]["max"] == 4  # the inventory's list is left as it was
