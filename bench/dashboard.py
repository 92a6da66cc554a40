"""The monitoring node's dashboard in headless Chromium (Debian's, in the image
chromium-trixie that images/build.sh builds): what it drew, and a screenshot.

    python bench/dashboard.py [--out docs/dashboard.png]   (make bench runs it last)

The browser runs in the host's network namespace: the test host stands on the stack's
admin network, which is who may reach Prometheus (and so the dashboard) on stg-mon-1.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import stack

ROOT = Path(__file__).resolve().parent.parent
# Chromium's virtual time runs while nothing is fetched: the budget covers every chart's
# queries and drawing, not wall-clock waiting.
BUDGET_MS = 20000


def url() -> str:
    return f"http://{stack.address(stack.MONITORING)}:9090/user/"


def image() -> str:
    tag = [str(ROOT / "images" / "build.sh"), "tag", "chromium-trixie"]
    return subprocess.run(tag, check=True, capture_output=True, text=True).stdout.strip()


def browser(*args: str, out_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = ["docker", "run", "--rm", "--network", "host"]
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        cmd += ["--user", "0", "-v", f"{out_dir}:/out"]
    return subprocess.run([*cmd, image(), *args], check=False, capture_output=True, text=True, timeout=180)


def charts(dom: str) -> dict[str, tuple[int, int]]:
    """chart id -> (series, points) as the page recorded them after drawing."""
    found = {}
    for tag in re.findall(r'<div class="chart"[^>]*>', dom):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        found[attrs["id"]] = (int(attrs.get("data-series", 0)), int(attrs.get("data-points", 0)))
    return found


def drawn() -> tuple[str, dict[str, tuple[int, int]]]:
    """(the page's state, its charts) once Chromium ran the page's script."""
    out = browser(f"--virtual-time-budget={BUDGET_MS}", "--dump-dom", url())
    state = re.search(r'<body data-state="([^"]*)"', out.stdout)
    return (state.group(1) if state else f"no page: {out.stderr[-500:]}"), charts(out.stdout)


def screenshot(path: Path) -> Path:
    path = path.resolve()
    out = browser(
        "--window-size=1400,2000",
        f"--virtual-time-budget={BUDGET_MS}",
        f"--screenshot=/out/{path.name}",
        url(),
        out_dir=path.parent,
    )
    if out.returncode != 0 or not path.exists():
        raise RuntimeError(f"no screenshot: {out.stderr[-1000:]}")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = parser.parse_args()
    state, found = drawn()
    empty = sorted(name for name, (_, points) in found.items() if points == 0)
    print(f"[dashboard] {state}: {len(found)} charts, without data: {', '.join(empty) or 'none'}")
    print(f"[dashboard] screenshot {screenshot(args.out)}")
    return 0 if state == "ready" else 1


if __name__ == "__main__":
    sys.exit(main())
