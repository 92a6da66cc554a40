"""The node baseline on a real kernel (molecule/vm): what the container scenarios only
write, the VM applies, and all of it holds after a reboot. The verifier runs after the
reboot and after the converge that followed it (which changed nothing)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "tests"))
from helpers import pending_security_updates

ROOT = Path(__file__).resolve().parents[3]
DEFAULTS = yaml.safe_load((ROOT / "roles" / "common" / "defaults" / "main.yml").read_text())
testinfra_hosts = ["ansible://stg-mq-vm"]


def test_it_is_a_virtual_machine_with_its_own_kernel(host):
    assert host.check_output("systemd-detect-virt") in ("kvm", "qemu")
    assert host.check_output("systemd-detect-virt --container || true") == "none"


def test_the_kernel_runs_with_the_roles_sysctl_values(host):
    """Every key of the file the role writes is the kernel's value after the boot."""
    conf = host.file("/etc/sysctl.d/60-hurtig.conf").content_string
    settings = dict(
        (part.strip() for part in line.split("=", 1))
        for line in conf.splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert "net.core.somaxconn" in settings
    for key, value in settings.items():
        live = host.file("/proc/sys/" + key.replace(".", "/")).content_string.split()
        assert live == value.split(), key


def test_the_disks_use_the_roles_io_scheduler(host):
    """The role's rule matches every virtio disk (with one vCPU the kernel's own choice is
    mq-deadline, and virtio-blk does not report a disk as non-rotational)."""
    for disk in ("vda", "vdb"):
        scheduler = host.file(f"/sys/block/{disk}/queue/scheduler").content_string
        assert f"[{DEFAULTS['common_io_scheduler']}]" in scheduler, (disk, scheduler)


def test_chrony_controls_the_clock(host):
    """chronyd runs without -x and keeps CAP_SYS_TIME (in the containers it may not set the
    clock). This network reaches no NTP server, so the clock is not checked against one."""
    assert host.service("chrony").is_running and host.service("chrony").is_enabled
    pid = host.check_output("pidof -s chronyd")
    args = host.file(f"/proc/{pid}/cmdline").content_string.split("\0")
    assert "-x" not in args, args
    capabilities = int(host.check_output(f"awk '/^CapEff/ {{print $2}}' /proc/{pid}/status"), 16)
    assert capabilities & (1 << 25), "chronyd lacks CAP_SYS_TIME"  # CAP_SYS_TIME is 25
    assert host.run("chronyc -n tracking").rc == 0


def test_the_data_disk_was_formatted_once_and_is_mounted_noatime(host):
    mount = host.mount_point("/var/lib/rabbitmq")
    assert (mount.device, mount.filesystem) == ("/dev/vdb", "ext4")
    assert "noatime" in mount.options
    # written after the first converge: the reboot and the converge after it kept it
    assert host.file("/var/lib/rabbitmq/.first-converge").exists


def test_the_firewall_drops_by_default_and_lets_ssh_in(host):
    """This test's own SSH connection comes through the firewall, from the admin network."""
    assert host.service("nftables").is_enabled
    chain = host.check_output("nft list chain inet hurtig input")
    assert "policy drop;" in chain
    assert "10.0.2.2" in chain  # the admin network: overrides.yml
    assert host.check_output("nft list tables").count("inet hurtig") == 1


def test_unattended_upgrades_would_take_the_security_suite(host):
    run = host.run("unattended-upgrade --dry-run --debug")
    assert run.rc == 0, run.stderr
    assert "Allowed origins are:" in run.stdout + run.stderr
    assert "-security" in run.stdout + run.stderr


def test_no_security_update_is_left_to_install(host):
    assert pending_security_updates(host) == []
