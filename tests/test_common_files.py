"""common_current: a template task skips only when the node's file is exactly what it would
write (content, mode, owner); anything else, including a hand edit, runs the task."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, load_plugin

plugin = load_plugin("test", "common_files")
COMMON_VARS = yaml.safe_load((ROOT / "roles" / "common" / "vars" / "main.yml").read_text())
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


def test_a_file_or_directory_read_back_by_the_script_exists(tmp_path):
    (tmp_path / "table.nft").write_text("table inet hurtig {}\n")
    (tmp_path / "rules.d").mkdir()
    r = run_read(str(tmp_path / "table.nft"), str(tmp_path / "rules.d"), str(tmp_path / "none"), "unit:cron")
    exists = plugin.common_exists
    assert exists(str(tmp_path / "table.nft"), r) and exists(str(tmp_path / "rules.d"), r)
    assert not exists(str(tmp_path / "none"), r)  # missing
    assert not exists("unit:cron", r) and not exists("/not/read", r)
    assert not exists(str(tmp_path / "table.nft"), {"skipped": True})


@pytest.mark.skipif(os.geteuid() != 0, reason="the files must belong to root, as on a node")
def test_a_directory_copy_skips_only_when_every_file_is_in_place(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    (src / "index.html").write_text("<html>")
    (src / "app.js").write_bytes(b"\x00\xffjs")  # bytes, not text
    shutil.copytree(src, dest)
    os.chmod(dest, 0o755)
    for f in dest.iterdir():
        os.chmod(f, 0o644)

    def tree() -> bool:
        paths = [str(dest)] + [str(dest / f.name) for f in src.iterdir()]
        return plugin.common_tree_current(str(src), run_read(*paths), str(dest))

    assert tree()
    (dest / "app.js").write_bytes(b"changed")  # a file changed on the node
    assert not tree()
    shutil.copy(src / "app.js", dest / "app.js")
    (src / "new.css").write_text("a{}")  # a file the node does not have yet
    assert not tree()
    os.remove(src / "new.css")
    os.chmod(dest / "index.html", 0o600)  # a mode changed by hand
    assert not tree()
    os.chmod(dest / "index.html", 0o644)
    assert tree()
    (src / "sub").mkdir()  # a subdirectory: the copy decides
    assert not tree()


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


def run_read(*args: str) -> dict:
    """The role's read-back script itself (roles/common/vars/main.yml) on this machine."""
    script = COMMON_VARS["common_files_read_script"]
    done = subprocess.run(["/bin/sh", "-c", script, "sh", *args], capture_output=True, text=True, check=True)
    return {"rc": 0, "stdout": done.stdout}


def test_units_enabled_or_disabled_with_any_state():
    state = plugin.common_unit_state
    assert state("fstrim.timer", read("unit enabled:inactive unit:fstrim.timer"), "enabled")  # in a container
    assert state("fstrim.timer", read("unit enabled:active unit:fstrim.timer"), "enabled", "active")
    assert not state("fstrim.timer", read("unit enabled:inactive unit:fstrim.timer"), "enabled", "active")
    assert state("fstrim.timer", read("unit disabled:inactive unit:fstrim.timer"), "disabled", "inactive")
    assert not state("fstrim.timer", read("unit masked:inactive unit:fstrim.timer"), "disabled")
    assert not state("fstrim.timer", read("unit enabled:active unit:chrony"), "enabled")
    assert not state("fstrim.timer", {"skipped": True}, "enabled")


def test_timezone_link_read_back_by_the_script(tmp_path):
    (tmp_path / "zoneinfo" / "Europe").mkdir(parents=True)
    (tmp_path / "zoneinfo" / "Europe" / "Oslo").write_text("TZif")
    (tmp_path / "etc").mkdir()
    localtime = tmp_path / "etc" / "localtime"
    localtime.symlink_to("../zoneinfo/Europe/Oslo")  # relative, as systemd writes it
    links = plugin.common_links_to
    r = run_read(f"link:{localtime}", f"link:{tmp_path}/etc/nothing")
    assert links(str(localtime), r, f"{tmp_path}/zoneinfo/Europe/Oslo")
    assert not links(str(localtime), r, f"{tmp_path}/zoneinfo/Europe/Berlin")
    assert not links(f"{tmp_path}/etc/nothing", r, f"{tmp_path}/zoneinfo/Europe/Oslo")
    assert not links(str(localtime), {"skipped": True}, f"{tmp_path}/zoneinfo/Europe/Oslo")


def test_groups_and_members_read_back_by_the_script():
    has = plugin.common_group_has
    r = run_read("group:root", "group:hurtig-no-such-group")
    assert has("root", r)
    assert not has("hurtig-no-such-group", r)
    assert has("ssh-users", read("group :alice,deploy group:ssh-users"), "deploy")
    assert not has("ssh-users", read("group :alice,deployer group:ssh-users"), "deploy")
    assert not has("ssh-users", read("group : group:ssh-users"), "deploy")
    assert has("ssh-users", read("group : group:ssh-users"))
    assert not has("root", {"skipped": True})


MARKER = "# {mark} hurtig nodes (managed by Ansible)"
BLOCK = "10.0.0.1 stg-mq-1\n10.0.0.2 stg-mq-2\n"


def blockinfile(path: Path, block: str) -> bool:
    """ansible.builtin.blockinfile on a local file (no inventory, no project config): did it
    change it?"""
    cfg = path.parent / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    args = json.dumps({"path": str(path), "marker": MARKER, "block": block})
    done = subprocess.run(
        ["ansible", "localhost", "-i", "localhost,", "-c", "local", "-m", "ansible.builtin.blockinfile", "-a", args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(cfg)},
    )
    return '"changed": true' in done.stdout


def test_etc_hosts_block_skips_exactly_when_blockinfile_would_not_change(tmp_path):
    hosts = tmp_path / "hosts"
    has = plugin.common_has_block
    hosts.write_text("127.0.0.1 localhost\n127.0.1.1 stg-mq-1\n")
    assert not has(str(hosts), run_read(f"text:{hosts}"), MARKER, BLOCK)
    assert blockinfile(hosts, BLOCK)
    assert has(str(hosts), run_read(f"text:{hosts}"), MARKER, BLOCK)
    assert not blockinfile(hosts, BLOCK)
    assert not has(str(hosts), run_read(f"text:{hosts}"), MARKER, "10.0.0.1 stg-mq-1\n")  # a node removed
    hosts.write_text(hosts.read_text().replace("10.0.0.2", "10.0.0.9"))  # a hand edit inside the block
    assert not has(str(hosts), run_read(f"text:{hosts}"), MARKER, BLOCK)
    assert blockinfile(hosts, BLOCK)
    assert has(str(hosts), run_read(f"text:{hosts}"), MARKER, BLOCK.rstrip("\n"))  # the module adds the newline
    assert not has(str(tmp_path / "missing"), run_read(f"text:{tmp_path}/missing"), MARKER, BLOCK)
    assert not has(str(hosts), {"skipped": True}, MARKER, BLOCK)


def test_the_loopback_line_is_seen_as_lineinfile_sees_it(tmp_path):
    hosts = tmp_path / "hosts"
    line = COMMON_VARS["common_etc_hosts_loopback_line"]
    has = plugin.common_has_line
    hosts.write_text("127.0.0.1 localhost\n127.0.1.1\tstg-mq-1\n")
    assert has(str(hosts), run_read(f"text:{hosts}"), line)
    hosts.write_text("127.0.0.1 localhost\n10.0.0.1 stg-mq-1\n")
    assert not has(str(hosts), run_read(f"text:{hosts}"), line)
    assert has(str(hosts), {"skipped": True}, line)  # not read: the task runs


def test_the_hostname_task_skips_only_when_kernel_and_static_names_are_the_name():
    is_name = plugin.common_hostname_is
    assert is_name("stg-mq-1", read("hostname stg-mq-1/stg-mq-1 hostname:"))
    assert not is_name("stg-mq-1", read("hostname vm/stg-mq-1 hostname:"))  # set, not yet live
    assert not is_name("stg-mq-1", read("hostname stg-mq-1/ hostname:"))  # no static name
    assert not is_name("stg-mq-1", {"skipped": True})
    kernel = os.uname().nodename
    static = next((s for s in Path("/etc/hostname").read_text().splitlines() if not s.startswith("#")), "")
    assert is_name(kernel, run_read("hostname:")) == (kernel == static)


def test_the_lists_refresh_skips_while_apt_would_find_them_fresh(tmp_path):
    younger = plugin.common_younger
    stamp, lists = tmp_path / "update-success-stamp", tmp_path / "lists"
    lists.mkdir()
    old = time.time() - 2 * 86400
    os.utime(lists, (old, old))
    paths = [str(stamp), str(lists)]
    assert not younger(paths, run_read(*(f"age:{p}" for p in paths)), 86400)  # no stamp: the lists' age
    stamp.touch()
    assert younger(paths, run_read(*(f"age:{p}" for p in paths)), 86400)  # the stamp wins, as in apt
    os.utime(lists, None)
    os.utime(stamp, (old, old))
    assert not younger(paths, run_read(*(f"age:{p}" for p in paths)), 86400)
    assert not younger([str(tmp_path / "none")], run_read(f"age:{tmp_path}/none"), 86400)
    assert not younger(paths, {"skipped": True}, 86400)
