"""Faults under load on the converged staging stack (bench/chaos.py at CI size). Runs after
the other modules of this verifier: it kills and replaces what they use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_no_accepted_job_is_lost_under_faults():
    """make chaos at CI size (bench/chaos.py): broker kill -9 and restart, worker kill -9,
    Docker daemon restart, API restart, a 20 s network cut, a rolling worker redeploy, a
    rotation of the API's and the workers' broker passwords by site.yml, malformed
    requests, and the autoscaler killed, cut from the brokers and its Docker restarted
    mid-burst."""
    out = ROOT / ".cache" / "faults-ci.json"  # scripts/test.sh prints its summary
    out.parent.mkdir(exist_ok=True)
    out.unlink(missing_ok=True)
    n = os.environ.get("HURTIG_CHAOS_N", "600")
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos.py"), "--n", n, "--rate", "200", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
