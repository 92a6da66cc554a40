"""make test's lanes (scripts/test.sh --lanes): every Molecule scenario runs in exactly one,
and the solo scenarios in the order SOLO names them (a scenario left out of every lane would
never run, and CI would still end green)."""

from __future__ import annotations

import os
import subprocess

from conftest import ROOT

LANE_VARS = ("SCENARIOS", "BACKGROUND", "SOLO", "SIDE", "SPLIT")


def lanes(**env: str) -> dict[str, list[str]]:
    done = subprocess.run(
        ["bash", "scripts/test.sh", "--lanes"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in LANE_VARS} | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {name: value.split() for name, value in (line.split(":", 1) for line in done.stdout.splitlines())}


def test_every_scenario_runs_in_one_lane():
    got = lanes()
    scenarios = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
    ran = got["background"] + got["foreground"] + got["solo"] + got["side"]
    assert sorted(ran) == scenarios
    assert got["solo"] == ["worker", "default"]  # the VM lane beside worker, not default's fault tests
    assert got["side"] == ["vm"]
    assert got["split"] == []


def test_a_chosen_list_keeps_solo_order_and_lanes():
    got = lanes(SCENARIOS="default vm worker api", SOLO="default worker")
    assert got["solo"] == ["default", "worker"]
    assert got["side"] == ["vm"] and got["foreground"] == ["api"]
    assert lanes(SCENARIOS="common", BACKGROUND="", SIDE="")["foreground"] == ["common"]


def test_a_scenario_in_the_background_lane_is_not_run_again_as_solo():
    got = lanes(BACKGROUND="worker")
    assert got["background"] == ["worker"] and got["solo"] == ["default"]
