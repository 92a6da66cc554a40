"""images/build.sh's client image: its tag names the runtime's and the client's packages,
and anything else than a package is refused before a build starts. (The worker scenario
builds it, ships it and runs the example client's function.)"""

import shutil
import subprocess
from pathlib import Path

from conftest import ROOT

BUILD = ROOT / "images" / "build.sh"
PACKAGE = ROOT / "templates" / "example-client" / "functions"


def build(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUILD), *args], check=False, capture_output=True, text=True, timeout=60)


def test_the_tag_follows_the_packages_files_and_the_runtime(tmp_path: Path) -> None:
    copy = tmp_path / "functions"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    first = build("client-tag", "runtime-trixie", str(copy)).stdout.strip()
    assert first.startswith("hurtig/client:trixie-")
    assert build("client-tag", "runtime-trixie", str(copy)).stdout.strip() == first
    (copy / "src" / "acme_functions" / "__pycache__").mkdir()  # caches are not inputs
    (copy / "src" / "acme_functions" / "__pycache__" / "greet.pyc").write_bytes(b"x")
    assert build("client-tag", "runtime-trixie", str(copy)).stdout.strip() == first
    with (copy / "src" / "acme_functions" / "greet.py").open("a") as f:
        f.write("# changed\n")
    assert build("client-tag", "runtime-trixie", str(copy)).stdout.strip() != first
    runtime = build("tag", "runtime-trixie").stdout.strip()
    assert runtime.startswith("hurtig/runtime:trixie-") and runtime.split("-")[-1] != first.split("-")[-1]


def test_only_project_directories_and_wheels_are_packages(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    for bad in (tmp_path, tmp_path / "notes.txt", tmp_path / "missing"):
        refused = build("client-save", "runtime-trixie", str(tmp_path / "out.tar.gz"), str(bad))
        assert refused.returncode == 2 and "neither a directory with a pyproject.toml nor a .whl" in refused.stderr
    assert not (tmp_path / "out.tar.gz").exists()
    assert build("client-tag", "runtime-trixie").returncode == 2  # no package at all
