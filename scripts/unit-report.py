#!/usr/bin/env python3
"""Per-module results of one pytest run, from its JUnit XML: one line per test module,
`<name> <rc> <seconds>` (rc 0 = every test passed or was skipped). A module named on the
command line without a test case in the report (it did not import) counts as failed.

    scripts/unit-report.py report.xml tests/test_a.py tests/test_b.py
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def module_of(classname: str) -> str:
    """`tests.test_api` or `tests.test_api.TestX` -> `test_api`."""
    parts = classname.split(".")
    return next((p for p in reversed(parts) if p.startswith("test_")), parts[-1])


def main(report: str, modules: list[str]) -> int:
    results: dict[str, list[float]] = {Path(m).stem: [0, 0.0] for m in modules}  # failures, seconds
    seen: set[str] = set()
    for case in ET.parse(report).iter("testcase"):
        name = module_of(case.get("classname") or "")
        if not name:  # a collection error (its module, with no test case, counts as failed)
            continue
        failures, seconds = results.setdefault(name, [0, 0.0])
        bad = any(case.find(tag) is not None for tag in ("failure", "error"))
        results[name] = [failures + bad, seconds + float(case.get("time", 0))]
        seen.add(name)
    for name, (failures, seconds) in sorted(results.items()):
        rc = 1 if failures or name not in seen else 0
        print(f"{name} {rc} {round(seconds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
