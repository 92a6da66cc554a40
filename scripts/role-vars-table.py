#!/usr/bin/env python3
"""Print a role's variables table (Markdown) from its meta/argument_specs.yml.

scripts/role-vars-table.py roles/common >> roles/common/README.md
"""

import sys
from pathlib import Path

import yaml


def cell(value: object) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return text.replace("|", "\\|")


def main(role: Path) -> None:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    print("| Variable | Type | Default | Description |")
    print("| --- | --- | --- | --- |")
    for name, spec in specs["argument_specs"]["main"]["options"].items():
        desc = spec.get("description", "")
        desc = " ".join(desc) if isinstance(desc, list) else desc
        if spec.get("required"):
            default = "**required**"
        elif name in defaults:
            default = f"`{cell(defaults[name])}`"
            if len(default) > 60:
                default = "see `defaults/main.yml`"
        else:
            default = "(unset)"
        print(f"| `{name}` | {spec.get('type', 'str')} | {default} | {desc.replace('|', '/')} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
