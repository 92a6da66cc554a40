"""CI converges what users deploy: molecule/default is inventories/staging plus a host map and
a short, fixed list of container-only overrides, nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "molecule" / "default"
STAGING = ROOT / "inventories" / "staging"

# Every key molecule/default/overrides.yml may set (each justified there): what a container
# cannot apply like a VM, where the test controller and load generator stand, the example
# secrets of this throw-away stack, and the limits of this test host.
ALLOWED_OVERRIDES = {
    "hurtig_allow_example_secrets",
    "common_sysctl_apply",
    "common_io_scheduler_apply",
    "common_chrony_control_clock",
    "common_manage_hostname",
    "common_firewall_admin_cidrs",
    "nginx_limit_exempt",
    "nginx_bench_location",
    "docker_default_ulimit_nofile",
    "rabbitmq_disk_free_limit_absolute",
    "monitoring_prometheus_sandbox",
}


def load(path: Path):
    return yaml.safe_load(path.read_text())


def hosts(inventory: dict) -> dict[str, dict[str, dict]]:
    return {group: spec["hosts"] for group, spec in inventory["all"]["children"].items()}


def test_the_scenario_links_stagings_group_vars_and_adds_only_the_host_map():
    inventory = load(SCENARIO / "molecule.yml")["provisioner"]["inventory"]
    assert set(inventory) == {"links"}, "no group_vars, host_vars or hosts of the scenario's own"
    assert inventory["links"] == {"hosts.yml": "hosts.yml", "group_vars": "../../inventories/staging/group_vars/"}
    assert not (STAGING / "host_vars").exists()


def test_the_host_map_has_stagings_hosts_and_groups_and_only_addresses():
    mine, shipped = hosts(load(SCENARIO / "hosts.yml")), hosts(load(STAGING / "hosts.yml"))
    assert {g: sorted(h) for g, h in mine.items()} == {g: sorted(h) for g, h in shipped.items()}
    for group in mine.values():
        for name, hostvars in group.items():
            assert set(hostvars) == {"ansible_host", "private_address"}, name


def test_the_platforms_are_stagings_hosts():
    platforms = load(SCENARIO / "molecule.yml")["platforms"]
    shipped = hosts(load(STAGING / "hosts.yml"))
    assert {p["name"]: p["groups"] for p in platforms} == {
        name: [group] for group, names in shipped.items() for name in names
    }


def test_overrides_are_the_listed_container_only_settings():
    assert set(load(SCENARIO / "overrides.yml")) <= ALLOWED_OVERRIDES


def keys(data) -> set[str]:
    if isinstance(data, dict):
        return set(data) | {k for v in data.values() for k in keys(v)}
    if isinstance(data, list):
        return {k for v in data for k in keys(v)}
    return set()


def test_the_scenario_defines_no_functions_firewall_rules_users_ports_or_secrets():
    forbidden = re.compile(r"^(functions|.*firewall.*|.*password.*|.*secret.*|.*_users?|.*_port)$")
    for path in SCENARIO.glob("*.yml"):
        bad = {k for k in keys(load(path)) if forbidden.match(str(k))} - ALLOWED_OVERRIDES
        assert bad == set(), f"{path.name} sets {sorted(bad)}"


def test_converge_is_site_yml_and_prepare_is_the_bootstrap():
    assert load(SCENARIO / "converge.yml") == [
        {"name": "The whole stack, as `ansible-playbook -i inventories/staging site.yml`",
         "ansible.builtin.import_playbook": "../../site.yml"}
    ]  # fmt: skip
    assert load(SCENARIO / "prepare.yml")[0]["ansible.builtin.import_playbook"] == "../../playbooks/bootstrap.yml"


# The VM lane (molecule/vm): staging's broker on a real kernel, its group_vars linked, one
# override (where the controller's SSH comes from on qemu's user network), nothing skipped.
VM = ROOT / "molecule" / "vm"


def test_the_vm_lane_converges_stagings_baseline_with_one_override():
    scenario = load(VM / "molecule.yml")
    assert scenario["provisioner"]["inventory"]["links"]["group_vars"] == "../../inventories/staging/group_vars/"
    assert set(load(VM / "overrides.yml")) == {"common_firewall_admin_cidrs"}  # no *_apply: false
    assert load(VM / "converge.yml")[0]["ansible.builtin.import_playbook"] == "../../playbooks/common.yml"
    assert load(VM / "prepare.yml")[0]["ansible.builtin.import_playbook"] == "../../playbooks/bootstrap.yml"
    [(name, vm)] = hosts(load(VM / "hosts.yml"))["broker"].items()
    assert name in {p["name"] for p in scenario["platforms"]}
    # spelled out for testinfra, which does not template staging's "{{ hurtig_deploy_user }}"
    assert vm["ansible_user"] == load(STAGING / "group_vars" / "all" / "main.yml")["hurtig_deploy_user"]
