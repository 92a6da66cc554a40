"""common_current: is a file or directory on the node already what the role would write?

The role reads back everything it manages in one command at the start of a run
(tasks/main.yml): `<sha1> <mode>:<owner>:<group> <path>` per file,
`dir <mode>:<owner>:<group> <path>` per directory, `- - <path>` when missing,
`unit <enabled>:<active> unit:<name>` per service, `pkg <dpkg status> pkg:<name>` per
package (`ii`: installed; empty when dpkg does not know it). A task whose
target already has that content, type, mode and owner skips: no remote stat, copy or file
call. A file changed by hand (content, mode or owner) does not match, so the task runs and
puts it back, as it always did.

    when: not (common_files.sshd is common_current(common_files_read,
               lookup('ansible.builtin.template', common_files.sshd.src)))
"""

from __future__ import annotations

import hashlib
from typing import Any


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


def common_running(name: str, read: Any) -> bool:
    """True when the unit was read back enabled and active: its enable-and-start task skips."""
    if not isinstance(read, dict) or read.get("skipped") or read.get("rc", 1) != 0:
        return False
    return _state(read).get(f"unit:{name}") == ("unit", "enabled:active")


def common_installed(packages: list[str], read: Any) -> bool:
    """True when dpkg reported every package installed ("ii"): the apt task skips. A name
    with a version or a release (pkg=1.2, pkg/trixie), or a virtual package, never
    matches a line, so apt decides for it."""
    if not isinstance(read, dict) or read.get("skipped") or read.get("rc", 1) != 0:
        return False
    state = _state(read)
    return all(state.get(f"pkg:{name}") == ("pkg", "ii") for name in packages)


class TestModule:
    def tests(self) -> dict[str, Any]:
        return {"common_current": common_current, "common_running": common_running, "common_installed": common_installed}
