"""hurtig_api_keys: check the inventory's API keys against the functions list and normalise
them into the keys file the API reads (hurtig.auth).

An entry is a client: {name, sha256: one hex digest or a list (several while its key is
rotated), functions: names of the functions list, or ['*'], and optionally rate (requests
per second over all API processes) and burst (default: the rate)}. The inventory holds only
the SHA-256 of a key; the key stays with its client. `share` is one API process's part of
the whole (1 / API nodes x processes): each process limits a client to its share.
"""

from __future__ import annotations

import re
from typing import Any

from ansible.errors import AnsibleFilterError

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _limits(entry: dict[str, Any], share: float, where: str, errors: list[str]) -> dict[str, float]:
    """The entry's rate and burst, as one process's share."""
    out: dict[str, float] = {}
    for field in ("rate", "burst"):
        value = entry.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            errors.append(f"{where}: {field} must be a number > 0 (requests per second over all API processes)")
            return {}
        out[field] = float(value)
    if "burst" in out and "rate" not in out:
        errors.append(f"{where}: burst needs a rate")
        return {}
    if "rate" in out:
        out["burst"] = out.get("burst", out["rate"])
        # at least one request per process at once, or a small share would refuse everything
        out = {"rate": round(out["rate"] * share, 6), "burst": max(1.0, round(out["burst"] * share, 6))}
    return out


def hurtig_api_keys(keys: Any, functions: list[dict[str, Any]], share: float = 1.0) -> list[dict[str, Any]]:
    """The keys, checked and normalised ({name, sha256: [...], functions: [...]}); raise
    naming every error."""
    if not isinstance(keys, list):
        raise AnsibleFilterError(f"hurtig_api_keys must be a list of dicts, not {type(keys).__name__}")
    known = {f["name"] for f in functions}
    errors: list[str] = []
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    hashes: set[str] = set()
    for i, entry in enumerate(keys):
        if not isinstance(entry, dict):
            errors.append(f"hurtig_api_keys[{i}] is not a dict")
            continue
        name = str(entry.get("name", ""))
        where = f"hurtig_api_keys[{i}] ({name or 'no name'})"
        unknown_keys = sorted(set(entry) - {"name", "sha256", "functions", "rate", "burst"})
        if unknown_keys:
            errors.append(f"{where}: unknown keys {unknown_keys}")
        if not NAME.match(name):
            errors.append(f"{where}: name must match {NAME.pattern}")
        elif name in names:
            errors.append(f"{where}: name used twice")
        names.add(name)
        digests = entry.get("sha256")
        digests = [digests] if isinstance(digests, str) else digests
        if not isinstance(digests, list) or not digests or not all(HEX64.match(str(d)) for d in digests):
            errors.append(f"{where}: sha256 must be one or more SHA-256 digests (64 lowercase hex characters)")
            digests = []
        for d in digests:
            if d in hashes:
                errors.append(f"{where}: a sha256 is used twice (one key, one client)")
            hashes.add(d)
        allowed = entry.get("functions")
        if not isinstance(allowed, list) or not allowed:
            errors.append(f"{where}: functions must be a non-empty list of function names, or ['*']")
            allowed = []
        missing = sorted({str(f) for f in allowed} - known - {"*"})
        if missing:
            errors.append(f"{where}: no function named {', '.join(missing)} in the functions list")
        limits = _limits(entry, share, where, errors)
        client = {"name": name, "sha256": [str(d) for d in digests], "functions": sorted({str(f) for f in allowed})}
        out.append(client | limits)
    if errors:
        raise AnsibleFilterError("; ".join(errors))
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"hurtig_api_keys": hurtig_api_keys}
