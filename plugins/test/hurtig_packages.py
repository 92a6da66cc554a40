"""hurtig_installed: did dpkg report every package installed? (tasks/packages.yml)

The roles that install packages read them with one `dpkg-query -W -f '${db:Status-Abbrev}
${Package}\\n' <names>` (about a fifth of an apt call that finds everything installed) and
run apt only when this test is false:

    when: not (hurtig_packages is hurtig_installed(hurtig_packages_status))

(The common role, which runs before any other and does not depend on this one, reads its
packages in its own read-back command: test common_installed.)
"""

from __future__ import annotations

from typing import Any


def hurtig_installed(packages: list[str], read: Any) -> bool:
    """True when every package has a line `ii <name>` (installed, no error). A name with a
    version or a release (pkg=1.2, pkg/trixie), an architecture qualifier, a virtual
    package, or a failed read never matches, so apt decides for it."""
    if not isinstance(read, dict) or read.get("skipped") or "stdout" not in read:
        return False
    status = {}
    for line in read["stdout"].splitlines():
        abbrev, _, name = line.partition(" ")
        status[name.strip()] = abbrev
    return all(status.get(name) == "ii" for name in packages)


class TestModule:
    def tests(self) -> dict[str, Any]:
        return {"hurtig_installed": hurtig_installed}
