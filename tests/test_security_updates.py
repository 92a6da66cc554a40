"""The check of the VM lane and the common scenario (helpers.security_updates): an installed
package with a newer version in Debian's security suite is reported; other updates are not."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "molecule" / "resources" / "tests"))
from helpers import security_updates

PLAN = """NOTE: This is only a simulation!
Reading package lists...
The following packages will be upgraded:
  curl libcurl4t64 tzdata
Inst curl [8.14.1-2+deb13u6] (8.14.1-2+deb13u7 Debian:13.3/stable, Debian-Security:13/stable-security [amd64])
Inst libcurl4t64 [8.14.1-2+deb13u6] (8.14.1-2+deb13u7 Debian-Security:13/stable-security [amd64])
Inst tzdata [2025a-4] (2025b-0+deb13u1 Debian:13.3/stable-updates [all])
Conf curl (8.14.1-2+deb13u7 Debian-Security:13/stable-security [amd64])
"""


def test_a_fixed_vulnerability_not_installed_is_reported():
    assert security_updates(PLAN) == ["curl", "libcurl4t64"]


def test_nothing_to_upgrade_reports_nothing():
    assert (
        security_updates("Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n")
        == []
    )
