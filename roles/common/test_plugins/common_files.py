"""common_current: is a file on the node already what the role would write?

The role reads back every file it manages in one command at the start of a run
(tasks/main.yml): `<sha1> <mode>:<owner>:<group> <path>` per line, `- - <path>` for a
missing file. A template task whose rendered content, mode and owner match skips: no remote
stat, copy or file call. A file changed by hand (content, mode or owner) does not match, so
the task runs and puts it back, as it always did.

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


def common_current(spec: dict[str, Any], read: Any, content: str) -> bool:
    """True when spec['dest'] has this content, spec['mode'] and owner/group (default root)."""
    if not isinstance(read, dict) or read.get("skipped") or read.get("rc", 1) != 0:
        return False
    owner = spec.get("owner", "root")
    mode = format(int(str(spec["mode"]), 8), "o")
    want = (hashlib.sha1(str(content).encode()).hexdigest(), f"{mode}:{owner}:{spec.get('group', owner)}")
    return _state(read).get(spec["dest"]) == want


class TestModule:
    def tests(self) -> dict[str, Any]:
        return {"common_current": common_current}
