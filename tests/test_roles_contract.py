"""The machine-checked contract every role keeps (run by `make test` as a unit test).

- every default is prefixed with the role name and declared in meta/argument_specs.yml;
- every declared default equals the value in defaults/main.yml;
- the role README's variables table lists exactly the declared options;
- every template starts with the ansible_managed comment.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())


def _load(path: Path) -> dict:
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def _options(role: Path) -> dict:
    specs = _load(role / "meta" / "argument_specs.yml")
    return specs.get("argument_specs", {}).get("main", {}).get("options", {}) or {}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_are_prefixed_and_declared(role: Path) -> None:
    defaults = _load(role / "defaults" / "main.yml")
    options = _options(role)
    prefix = role.name.replace("-", "_") + "_"
    assert [k for k in defaults if not k.startswith(prefix)] == []
    assert sorted(set(defaults) - set(options)) == [], "defaults missing from argument_specs"
    assert sorted(k for k in options if not k.startswith(prefix)) == []


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_declared_defaults_match(role: Path) -> None:
    defaults = _load(role / "defaults" / "main.yml")
    for name, spec in _options(role).items():
        if "default" in spec:
            assert name in defaults, f"{name} declares a default that defaults/main.yml lacks"
            assert spec["default"] == defaults[name], f"{name}: argument_specs and defaults differ"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_readme_table_matches_specs(role: Path) -> None:
    readme = (role / "README.md").read_text()
    documented = set(re.findall(r"^\|\s*`([a-z0-9_]+)`\s*\|", readme, flags=re.M))
    assert documented == set(_options(role)), "README variables table differs from argument_specs"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_templates_start_with_ansible_managed(role: Path) -> None:
    for tpl in sorted((role / "templates").glob("**/*.j2")):
        lines = [ln for ln in tpl.read_text().splitlines() if not ln.startswith("#!")]
        assert lines and lines[0].startswith("{{ ansible_managed | comment"), tpl.name


def _bool_options() -> set[str]:
    """Every option any role declares `type: bool` (a role reads the shared hurtig_* too)."""
    return {name for role in ROLES for name, spec in _options(role).items() if (spec or {}).get("type") == "bool"}


def test_a_bool_option_is_tested_through_the_bool_filter() -> None:
    """`-e api_auth=false` passes the string "false", which Jinja's `if` takes as true:
    every inline test of a declared bool is `if var | bool` (the api role once started the
    API with its key check on and its keys file removed)."""
    names = "|".join(sorted(_bool_options(), key=len, reverse=True))
    bare = re.compile(rf"\bif\s+(?:not\s+)?({names})\b(?!\s*\|\s*bool)")
    found = [
        f"{path.relative_to(ROOT)}:{n}: {m.group(1)}"
        for role in ROLES
        for path in sorted(role.rglob("*"))
        if path.suffix in {".yml", ".j2"} and path.is_file() and "node_modules" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for m in bare.finditer(line)
    ]
    assert found == []
