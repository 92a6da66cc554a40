"""The collection hurtig.platform as a client repository uses it: `make dist`'s build, the
tarball installed offline by the example client's requirements.yml, and the collection's
playbooks run by full name with nothing of this repository on Ansible's paths."""

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
EXAMPLE = ROOT / "templates" / "example-client"


def run(cwd: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    """A command as the client runs it: its own ansible.cfg, no variable of this repository's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env["ANSIBLE_NOCOLOR"] = "1"
    return subprocess.run(cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = run(out, "ansible-galaxy", "collection", "build", "--force", "--output-path", str(out), str(ROOT))
    assert built.returncode == 0, built.stdout + built.stderr
    return out / f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tarball: Path) -> Path:
    """The example client repository, with the tarball vendored and the collection installed."""
    repo = tmp_path_factory.mktemp("client")
    shutil.copytree(EXAMPLE, repo, dirs_exist_ok=True)
    (repo / "vendor").mkdir()
    shutil.copy(tarball, repo / "vendor")
    # its inventory: the staging layout (hosts, secrets) with its own functions (functions.yml)
    shutil.copytree(ROOT / "inventories" / "staging", repo / "inventory", dirs_exist_ok=True)
    main = repo / "inventory" / "group_vars" / "all" / "main.yml"
    settings = yaml.safe_load(main.read_text())
    del settings["functions"]
    digest = hashlib.sha256(b"acme-greeter-key-0123456789").hexdigest()  # not an example's
    settings["hurtig_api_keys"] = [{"name": "acme-greeter", "sha256": digest, "functions": ["greet"]}]
    main.write_text(yaml.safe_dump(settings))
    shutil.copy(ROOT / "inventories" / "vault-password.example", repo)
    (repo / "roles").mkdir()
    installed = run(repo, "ansible-galaxy", "collection", "install", "--offline", "-r", "requirements.yml")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return repo


def test_the_tarball_holds_what_a_client_converges_with_and_none_of_the_projects_tests(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        modes = {m.name: m.mode for m in tar.getmembers()}
    for path in (
        "playbooks/site.yml",
        "playbooks/bootstrap.yml",
        "plugins/filter/hurtig_functions.py",
        "plugins/test/common_files.py",
        "roles/hurtig/meta/functions_spec.yml",
        "meta/runtime.yml",
        "images/build.sh",
        "images/runtime/Dockerfile",
        "images/debian-slim/Dockerfile",
        "src/hurtig/api.py",
        "pyproject.toml",
        "CHANGELOG.md",
        "templates/example-client/requirements.yml",
    ):
        assert path in modes, path
    assert modes["images/build.sh"] & 0o111  # roles/runtime_image runs it
    roles = {p.name for p in (ROOT / "roles").iterdir() if p.is_dir()}
    assert roles == {n.split("/")[1] for n in modes if n.startswith("roles/") and n.count("/") >= 2}
    dashboard = "roles/monitoring/files/dashboard/index.html"  # built output, not in git
    if (ROOT / dashboard).exists():
        assert dashboard in modes
    for never in ("molecule", "tests", "bench", "scripts", ".ci", ".cache", ".venv", "collections", "dist"):
        assert not any(n == never or n.startswith(f"{never}/") for n in modes), never


def test_installed_offline_at_the_version_of_galaxy_yml(client: Path) -> None:
    listed = run(client, "ansible-galaxy", "collection", "list", "hurtig.platform", "--format", "yaml")
    assert listed.returncode == 0, listed.stderr
    (versions,) = yaml.safe_load(listed.stdout).values()
    assert versions == {"hurtig.platform": {"version": GALAXY["version"]}}
    assert str(client / "collections") in listed.stdout


def test_the_collections_playbooks_run_by_full_name_with_its_filters(client: Path) -> None:
    """validate_inventory runs the role hurtig (its argument spec and the hurtig_functions
    and hurtig_api_keys filters) from the installed copy, the repository's roles out of reach."""
    ran = run(
        client,
        "ansible-playbook",
        "--vault-id",
        "example@vault-password.example",
        "hurtig.platform.validate_inventory",
        "-e",
        "hurtig_allow_example_secrets=true",
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "localhost                  : ok=" in ran.stdout
    checked = run(client, "ansible-playbook", "--syntax-check", "hurtig.platform.site")
    assert checked.returncode == 0, checked.stderr
    assert f"{client}/collections/ansible_collections/hurtig/platform/playbooks/site.yml" in checked.stdout


def test_the_installed_collection_builds_the_same_runtime_image(client: Path) -> None:
    """roles/runtime_image builds from the collection's images/ and src/: the same inputs,
    so the same image tag as this repository's."""
    installed = client / "collections" / "ansible_collections" / "hurtig" / "platform"
    tags = [run(d, "images/build.sh", "tag", "runtime-trixie").stdout.strip() for d in (installed, ROOT)]
    assert tags[0] and tags[0] == tags[1]
