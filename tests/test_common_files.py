"""common_current: a template task skips only when the node's file is exactly what it would
write (content, mode, owner); anything else, including a hand edit, runs the task."""

from __future__ import annotations

import hashlib

from conftest import role_plugin

plugin = role_plugin("common", "test_plugins", "common_files")
current = plugin.common_current

SPEC = {"src": "sshd_config.j2", "dest": "/etc/ssh/sshd_config.d/00-hurtig.conf", "mode": "0600"}
CONTENT = "Port 22\n"
SHA = hashlib.sha1(CONTENT.encode()).hexdigest()


def read(*lines: str, rc: int = 0) -> dict:
    return {"rc": rc, "stdout": "\n".join(lines)}


def test_same_content_mode_and_owner_is_current():
    assert current(SPEC, read(f"{SHA} 600:root:root {SPEC['dest']}"), CONTENT)


def test_anything_else_runs_the_task():
    dest = SPEC["dest"]
    assert not current(SPEC, read(f"{SHA} 644:root:root {dest}"), CONTENT)  # mode changed by hand
    assert not current(SPEC, read(f"{SHA} 600:admin:root {dest}"), CONTENT)  # owner
    assert not current(SPEC, read(f"{SHA} 600:root:root {dest}"), "Port 2222\n")  # new content
    assert not current(SPEC, read(f"- - {dest}"), CONTENT)  # missing
    assert not current(SPEC, read(f"{SHA} 600:root:root /etc/other"), CONTENT)  # not read
    assert not current(SPEC, read(f"{SHA} 600:root:root {dest}", rc=1), CONTENT)  # the read failed
    assert not current(SPEC, {"skipped": True}, CONTENT)  # --tags without the read


def test_paths_with_spaces_and_explicit_owner():
    spec = {"dest": "/srv/a b.conf", "mode": "0440", "owner": "rabbitmq"}
    assert current(spec, read(f"{SHA} 440:rabbitmq:rabbitmq /srv/a b.conf"), CONTENT)


def test_directories_compare_type_mode_and_owner():
    spec = {"dest": "/etc/nftables.d", "state": "directory", "mode": "0755"}
    assert current(spec, read("dir 755:root:root /etc/nftables.d"))
    assert not current(spec, read("dir 700:root:root /etc/nftables.d"))
    assert not current(spec, read(f"{SHA} 755:root:root /etc/nftables.d"))  # a file where a directory belongs
    assert not current(spec, read("- - /etc/nftables.d"))


def test_services_enabled_and_active_skip_their_task():
    running = plugin.common_running
    assert running("chrony", read("unit enabled:active unit:chrony"))
    assert not running("chrony", read("unit disabled:active unit:chrony"))
    assert not running("chrony", read("unit enabled:inactive unit:chrony"))
    assert not running("ssh", read("unit enabled:active unit:chrony"))
    assert not running("chrony", {"skipped": True})


def test_packages_all_installed_skip_apt():
    installed = plugin.common_installed
    both = read("pkg ii pkg:chrony", "pkg ii pkg:sudo")
    assert installed(["chrony", "sudo"], both)
    assert installed([], both)
    assert not installed(["chrony", "sudo"], read("pkg ii pkg:chrony", "pkg rc pkg:sudo"))  # removed, config left
    assert not installed(["chrony", "sudo"], read("pkg ii pkg:chrony", "pkg  pkg:sudo"))  # unknown to dpkg
    assert not installed(["chrony", "curl"], both)  # not read (added since)
    assert not installed(["chrony=4.6"], read("pkg ii pkg:chrony"))  # a pinned version: apt decides
    assert not installed(["chrony"], read("pkg ii pkg:chrony", rc=1))
    assert not installed(["chrony"], {"skipped": True})
