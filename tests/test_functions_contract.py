"""The typed `functions` contract (roles/hurtig): one spec, one filter, every default once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from conftest import load_plugin

ROOT = Path(__file__).resolve().parent.parent
plugin = load_plugin("filter", "hurtig_functions")
check = plugin.hurtig_functions


def test_defaults_are_applied_once_from_the_spec():
    [fn] = check([{"name": "resize", "handler": "pkg.mod:handle"}])
    assert fn == {
        "name": "resize",
        "queue": "jobs.resize",
        "broker_user": "hurtig-worker-resize",
        "handler": "pkg.mod:handle",
        "replicas": 1,
        "prefetch": 1,
        "max_retries": 3,
        "delivery_limit": 20,
        "retry_delay_ms": 5000,
        "max_ready": 100000,
        "max_ready_bytes": 268435456,
        "timeout": 60,
        "input_dirs": [],
        "group": "workers",
        "queue_type": "quorum",
    }
    options = plugin.spec()["options"]
    assert {k: v["default"] for k, v in options.items() if "default" in v} == {
        k: v for k, v in fn.items() if k not in ("name", "queue", "handler", "broker_user")
    }


def test_input_dirs_are_absolute_paths_without_dot_segments():
    [fn] = check([{"name": "a", "handler": "m:f", "input_dirs": ["/srv/hurtig/in", "/mnt/nfs.images/2026"]}])
    assert fn["input_dirs"] == ["/srv/hurtig/in", "/mnt/nfs.images/2026"]


def test_autoscale_gets_its_defaults_and_keeps_min_below_max():
    [fn] = check([{"name": "a", "handler": "m:f", "autoscale": {"max": "8"}}])
    assert fn["autoscale"] == {"min": 1, "max": 8, "target_backlog_per_replica": 5, "scale_in_after_s": 30}
    with pytest.raises(AnsibleFilterError, match=r"autoscale.min \(3\) is more than autoscale.max \(2\)"):
        check([{"name": "a", "handler": "m:f", "autoscale": {"min": 3, "max": 2}}])


def test_values_are_converted_and_kept():
    [fn] = check([{"name": "a", "handler": "m:f", "replicas": "4", "queue": "q.a", "memory": "1g", "cpus": 0.5}])
    assert fn["replicas"] == 4 and fn["queue"] == "q.a" and fn["memory"] == "1g" and fn["cpus"] == 0.5


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"handler": "m:f"}, "function #2: missing required arguments: name"),
        ({"name": "a"}, "function a: missing required arguments: handler"),
        ({"name": "Bad_Name", "handler": "m:f"}, "function Bad_Name: name 'Bad_Name' does not match"),
        ({"name": "a", "handler": "no-colon"}, "function a: handler 'no-colon' does not match"),
        ({"name": "a", "handler": "m:f", "replicas": -1}, "replicas is -1, at least 0"),
        ({"name": "a", "handler": "m:f", "prefetch": 0}, "prefetch is 0, at least 1"),
        ({"name": "a", "handler": "m:f", "replicas": "many"}, "cannot be converted to an int"),
        ({"name": "a", "handler": "m:f", "queue_type": "stream"}, "queue_type must be one of: quorum, classic"),
        ({"name": "a", "handler": "m:f", "replica": 2}, "replica. Supported parameters include"),
        ({"name": "a", "handler": "m:f", "input_dirs": ["srv/in"]}, "input_dirs 'srv/in' does not match"),
        ({"name": "a", "handler": "m:f", "input_dirs": ["/srv/../etc"]}, "input_dirs '/srv/../etc' does not match"),
        ({"name": "a", "handler": "m:f", "input_dirs": ["/"]}, "input_dirs '/' does not match"),
        (
            {"name": "a", "handler": "m:f", "autoscale": {"min": 1}},
            "required arguments: max found in functions -> autoscale",
        ),
        ({"name": "a", "handler": "m:f", "autoscale": {"max": 0}}, "autoscale.max is 0, at least 1"),
        (
            {"name": "a", "handler": "m:f", "autoscale": {"max": 2, "target_backlog_per_replica": 0}},
            "autoscale.target_backlog_per_replica is 0, at least 1",
        ),
        ("resize", "function #1: "),
    ],
)
def test_each_error_names_the_function_and_the_field(entry, message):
    with pytest.raises(AnsibleFilterError, match="breaks the contract") as err:
        check([{"name": "ok", "handler": "m:f"}, entry] if entry != "resize" else [entry])
    assert message in str(err.value)


def test_names_and_queues_are_unique():
    with pytest.raises(AnsibleFilterError, match="two functions have the name 'a'"):
        check([{"name": "a", "handler": "m:f"}, {"name": "a", "handler": "m:g", "queue": "other"}])
    with pytest.raises(AnsibleFilterError, match="two functions have the queue 'q'"):
        check([{"name": "a", "handler": "m:f", "queue": "q"}, {"name": "b", "handler": "m:f", "queue": "q"}])


def test_not_a_list_is_refused():
    with pytest.raises(AnsibleFilterError, match="must be a list"):
        check({"name": "a"})


@pytest.mark.parametrize("inventory", ["staging", "production"])
def test_the_shipped_inventories_keep_the_contract(inventory):
    data = yaml.safe_load((ROOT / "inventories" / inventory / "group_vars" / "all" / "main.yml").read_text())
    assert [f["name"] for f in check(data["functions"])]


def test_the_role_readme_documents_the_spec():
    readme = (ROOT / "roles" / "hurtig" / "README.md").read_text()
    rows = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0] and not cells[0].startswith(("`", "-", "field", "Variable")):
            for name in cells[0].split(", "):
                rows[name] = cells[2].strip("`")
    options = plugin.spec()["options"]
    assert set(rows) == set(options)
    for name, opt in options.items():
        expected = str(opt["default"]) if "default" in opt else rows[name]
        assert rows[name] == ("**required**" if opt.get("required") else expected), name


def test_each_function_has_its_own_broker_user_unless_it_names_one():
    fns = check(
        [
            {"name": "a", "handler": "m:f"},
            {"name": "b", "handler": "m:f", "broker_user": "team-x"},
            {"name": "c", "handler": "m:f", "broker_user": "team-x"},
        ],
        "acme-worker",
    )
    assert [f["broker_user"] for f in fns] == ["acme-worker-a", "team-x", "team-x"]
    with pytest.raises(AnsibleFilterError, match="broker_user"):
        check([{"name": "a", "handler": "m:f", "broker_user": "Bad User"}])
