"""hurtig_functions: validate the inventory's `functions` list and apply its defaults.

The contract is declared once, in ../meta/functions_spec.yml, in Ansible's argument spec
format plus two keys this filter checks: `pattern` (a regular expression the value must
match) and `minimum`. Every role and playbook that reads
`functions` reads it through this filter (the role variable `hurtig_functions`), so a
function's defaults live in one place.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

SPEC = Path(__file__).resolve().parents[2] / "roles" / "hurtig" / "meta" / "functions_spec.yml"


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    """The spec of the `functions` option."""
    return yaml.safe_load(SPEC.read_text())["functions"]["options"]["functions"]


def _checks(entry: dict[str, Any], options: dict[str, Any]) -> list[str]:
    errors = []
    for key, opt in options.items():
        value = entry.get(key)
        if value is None:
            continue
        if isinstance(value, dict) and "options" in opt:  # a sub-dict: its own options
            errors += [f"{key}.{e}" for e in _checks(value, opt["options"])]
            continue
        for one in value if isinstance(value, list) else [value]:  # a list: each element
            if "pattern" in opt and not re.fullmatch(opt["pattern"], str(one)):
                errors.append(f"{key} {one!r} does not match {opt['pattern']}")
        if "minimum" in opt and value < opt["minimum"]:
            errors.append(f"{key} is {value}, at least {opt['minimum']} is allowed")
    return errors


def _plain(value: Any) -> Any:
    """Plain Python values: the validator deep-copies its input, and copying Ansible's lazy,
    tagged containers costs a tenth of a second per call."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def hurtig_functions(functions: Any, worker_user: str = "hurtig-worker") -> list[dict[str, Any]]:
    """The functions list, checked, with every default applied; raise naming each error.
    `worker_user` prefixes the default broker user of each function."""
    if not isinstance(functions, list):
        raise AnsibleFilterError(f"functions must be a list of dicts, not {type(functions).__name__}")
    functions = _plain(functions)
    spec_ = spec()
    errors: list[str] = []
    result = []
    for i, entry in enumerate(functions):  # one entry at a time, so that errors name it
        label = entry.get("name", f"#{i + 1}") if isinstance(entry, dict) else f"#{i + 1}"
        checked = ArgumentSpecValidator({"functions": {**spec_, "elements": "dict"}}).validate({"functions": [entry]})
        if checked.error_messages:
            errors += [f"function {label}: {e}" for e in checked.error_messages]
            continue
        fn = checked.validated_parameters["functions"][0]
        if not fn.get("queue"):
            fn["queue"] = f"jobs.{fn['name']}"
        if not fn.get("broker_user"):
            fn["broker_user"] = f"{worker_user}-{fn['name']}"
        errors += [f"function {label}: {e}" for e in _checks(fn, spec_["options"])]
        scale = fn.get("autoscale")
        if scale and scale["min"] > scale["max"]:
            errors.append(
                f"function {label}: autoscale.min ({scale['min']}) is more than autoscale.max ({scale['max']})"
            )
        result.append({k: v for k, v in fn.items() if v is not None})
    for key in ("name", "queue"):
        seen = [f[key] for f in result]
        errors += [f"two functions have the {key} {v!r}" for v in sorted({v for v in seen if seen.count(v) > 1})]
    if errors:
        raise AnsibleFilterError("the functions list breaks the contract: " + "; ".join(errors))
    return result


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"hurtig_functions": hurtig_functions}
