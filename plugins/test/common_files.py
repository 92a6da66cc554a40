"""common_current: is a file or directory on the node already what the role would write?

The role reads back everything it manages in one command at the start of a run
(tasks/main.yml): `<sha1> <mode>:<owner>:<group> <path>` per file,
`dir <mode>:<owner>:<group> <path>` per directory, `- - <path>` when missing,
`unit <enabled>:<active> unit:<name>` per service, `pkg <dpkg status> pkg:<name>` per
package (`ii`: installed; empty when dpkg does not know it), `link <target> link:<path>`,
`group :<members> group:<name>` (`-` when missing), `text b64:<content> text:<path>`
(base64; `-` when missing), `hostname <kernel's>/<static> hostname:` and
`age <seconds since modified> age:<path>` (`-` when missing). A task whose
target already has that content, type, mode and owner skips: no remote stat, copy or file
call. A file changed by hand (content, mode or owner) does not match, so the task runs and
puts it back, as it always did.

    when: not (common_files.sshd is common_current(common_files_read,
               lookup('ansible.builtin.template', common_files.sshd.src)))
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
from pathlib import Path
from typing import Any


def _usable(read: Any) -> bool:
    return isinstance(read, dict) and not read.get("skipped") and read.get("rc", 1) == 0


def _state(read: Any) -> dict[str, tuple[str, str]]:
    out = {}
    for line in (read or {}).get("stdout", "").splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3:
            out[parts[2]] = (parts[0], parts[1])
    return out


def common_current(spec: dict[str, Any], read: Any, content: str | None = None) -> bool:
    """True when spec['dest'] has this content (a directory: spec state is directory),
    spec['mode'] and owner/group (default root)."""
    if not isinstance(read, dict) or read.get("skipped") or read.get("rc", 1) != 0:
        return False
    owner = spec.get("owner", "root")
    mode = format(int(str(spec["mode"]), 8), "o")
    kind = "dir" if spec.get("state") == "directory" else hashlib.sha1(str(content).encode()).hexdigest()
    want = (kind, f"{mode}:{owner}:{spec.get('group', owner)}")
    return _state(read).get(spec["dest"]) == want


def common_exists(path: str, read: Any) -> bool:
    """True when `path` was read back as a file (its SHA-1) or a directory."""
    kind = _state(read).get(path, ("-", "-"))[0] if _usable(read) else "-"
    return kind == "dir" or re.fullmatch(r"[0-9a-f]{40}", kind) is not None


def common_tree_current(src_dir: str, read: Any, dest_dir: str, mode: str = "0644") -> bool:
    """True when dest_dir was read back as a directory (mode 755) holding every file of
    src_dir with the same bytes and `mode`, owner root: a directory copy skips. A src_dir
    with subdirectories never is (their files are not read back): the copy decides."""
    if not _usable(read):
        return False
    state, want = _state(read), f"{format(int(str(mode), 8), 'o')}:root:root"
    entries = sorted(Path(src_dir).iterdir())
    if not entries or any(not e.is_file() for e in entries) or state.get(dest_dir) != ("dir", "755:root:root"):
        return False
    return all(state.get(f"{dest_dir}/{e.name}") == (hashlib.sha1(e.read_bytes()).hexdigest(), want) for e in entries)


def common_running(name: str, read: Any) -> bool:
    """True when the unit was read back enabled and active: its enable-and-start task skips."""
    return common_unit_state(name, read, "enabled", "active")


def common_unit_state(name: str, read: Any, enabled: str, active: str | None = None) -> bool:
    """True when `systemctl is-enabled` said `enabled` and `is-active` said `active` (any,
    when None: a timer in a container is enabled but never active)."""
    if not _usable(read):
        return False
    kind, value = _state(read).get(f"unit:{name}", ("", ""))
    is_enabled, _, is_active = value.partition(":")
    return kind == "unit" and is_enabled == enabled and (active is None or is_active == active)


def common_links_to(path: str, read: Any, target: str) -> bool:
    """True when `path` is a symlink to `target` (a relative link resolved from its
    directory, one level: /etc/localtime -> ../usr/share/zoneinfo/Europe/Oslo)."""
    if not _usable(read):
        return False
    kind, value = _state(read).get(f"link:{path}", ("", "-"))
    if kind != "link" or value == "-":
        return False
    return posixpath.normpath(posixpath.join(posixpath.dirname(path), value)) == posixpath.normpath(target)


def common_group_has(name: str, read: Any, member: str | None = None) -> bool:
    """True when the group exists (and lists `member` among its members, when given)."""
    if not _usable(read):
        return False
    kind, value = _state(read).get(f"group:{name}", ("", "-"))
    if kind != "group" or not value.startswith(":"):
        return False
    return member is None or member in value[1:].split(",")


def _text(path: str, read: Any) -> str | None:
    kind, value = _state(read).get(f"text:{path}", ("", "-"))
    if kind != "text" or not value.startswith("b64:"):
        return None
    return base64.b64decode(value[4:]).decode("utf-8", "surrogateescape")


def common_has_block(path: str, read: Any, marker: str, block: str) -> bool:
    """True when the file holds exactly the block ansible.builtin.blockinfile would write
    (its markers with `{mark}` as BEGIN and END around the block's lines), where the module
    would find it (the last BEGIN and END lines): the blockinfile task skips."""
    text = _text(path, read) if _usable(read) else None
    if text is None or not block:
        return False
    lines = text.splitlines(keepends=True)
    begin, end = marker.replace("{mark}", "BEGIN") + "\n", marker.replace("{mark}", "END") + "\n"
    want = [begin, *(block if block.endswith("\n") else block + "\n").splitlines(keepends=True), end]
    n0 = max((i for i, line in enumerate(lines) if line == begin), default=None)
    n1 = max((i for i, line in enumerate(lines) if line == end), default=None)
    if n0 is None or n1 is None or n0 > n1:
        return False
    return lines[n0 : n1 + 1] == want and (n0 == 0 or lines[n0 - 1].endswith("\n"))


def common_has_line(path: str, read: Any, regexp: str) -> bool:
    """False only when the file was read and no line matches `regexp` (re.search, as
    ansible.builtin.lineinfile): its `state: absent` task skips. Unread: True (it runs)."""
    text = _text(path, read) if _usable(read) else None
    if text is None:
        return True
    return any(re.search(regexp, line) for line in text.splitlines(keepends=True))


def common_installed(packages: list[str], read: Any) -> bool:
    """True when dpkg reported every package installed ("ii"): the apt task skips. A name
    with a version or a release (pkg=1.2, pkg/trixie), or a virtual package, never
    matches a line, so apt decides for it."""
    if not _usable(read):
        return False
    state = _state(read)
    return all(state.get(f"pkg:{name}") == ("pkg", "ii") for name in packages)


def common_hostname_is(name: str, read: Any) -> bool:
    """True when both the kernel's hostname and the static one (/etc/hostname, its first line
    that is not a comment) are the name: ansible.builtin.hostname (use: systemd) would set
    neither."""
    return _usable(read) and _state(read).get("hostname:") == ("hostname", f"{name}/{name}")


def common_younger(paths: list[str], read: Any, seconds: int) -> bool:
    """True when the first of the paths that exists was modified less than `seconds` ago, as
    the apt module judges its lists for cache_valid_time (its update stamp, else the lists
    directory). None exists, or not read: False, and the task runs."""
    if not _usable(read):
        return False
    state = _state(read)
    for path in paths:
        kind, age = state.get(f"age:{path}", ("", "-"))
        if kind == "age" and age != "-":
            return age.lstrip("-").isdigit() and int(age) < int(seconds)
    return False


class TestModule:
    def tests(self) -> dict[str, Any]:
        return {
            "common_current": common_current,
            "common_exists": common_exists,
            "common_tree_current": common_tree_current,
            "common_running": common_running,
            "common_unit_state": common_unit_state,
            "common_installed": common_installed,
            "common_links_to": common_links_to,
            "common_group_has": common_group_has,
            "common_has_block": common_has_block,
            "common_has_line": common_has_line,
            "common_hostname_is": common_hostname_is,
            "common_younger": common_younger,
        }
