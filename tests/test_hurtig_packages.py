"""hurtig_installed: apt runs unless dpkg-query reported every package installed."""

from __future__ import annotations

import subprocess

from conftest import load_plugin

installed = load_plugin("test", "hurtig_packages").hurtig_installed
FORMAT = "-f=${db:Status-Abbrev} ${Package}\\n"


def query(*names: str) -> dict:
    """The query of tasks/packages.yml, on this machine (Debian: dpkg is there)."""
    done = subprocess.run(["dpkg-query", "-W", FORMAT, *names], check=False, capture_output=True, text=True)
    return {"rc": done.returncode, "stdout": done.stdout}


def test_every_package_installed_skips_apt():
    assert installed(["bash", "coreutils"], query("bash", "coreutils"))
    assert installed([], query("bash"))


def test_a_missing_or_unknown_package_runs_apt():
    read = query("bash", "hurtig-no-such-package")
    assert read["rc"] != 0  # dpkg-query fails for the unknown one; the task does not
    assert not installed(["bash", "hurtig-no-such-package"], read)
    assert not installed(["bash", "curl-not-read"], query("bash"))


def test_states_other_than_installed_and_odd_names_run_apt():
    assert not installed(["sudo"], {"stdout": "rc  sudo\n"})  # removed, config left
    assert not installed(["sudo"], {"stdout": "iF  sudo\n"})  # half-configured
    assert not installed(["sudo=1.9"], {"stdout": "ii  sudo\n"})  # a pinned version: apt decides
    assert not installed(["sudo"], {"skipped": True})
    assert not installed(["sudo"], None)
