"""common_nft_rules: firewall declarations -> nftables rule lines (for table inet hurtig).

A declaration: {name, port, proto, from_groups, from_cidrs} (sources is an alias of
from_cidrs). port is a number, a range string ("35672-35682") or a list of them; proto is
tcp (default) or udp. from_groups admits the private_address of every host of those
inventory groups. A declaration with neither from_groups nor from_cidrs admits anyone; one
with them whose lists come out empty (e.g. no monitoring group) admits no one and renders
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

PORT = re.compile(r"^\d{1,5}(-\d{1,5})?$")


def _ports(port: Any, name: str) -> str:
    ports = [str(p) for p in (port if isinstance(port, list) else [port])]
    bad = [p for p in ports if not PORT.match(p)]
    if not ports or bad:
        raise AnsibleFilterError(f"firewall rule {name!r}: bad port {bad or port!r}")
    return ports[0] if len(ports) == 1 else "{ " + ", ".join(ports) + " }"


def _sources(rule: Mapping[str, Any], groups: Mapping[str, list[str]], hostvars: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for group in rule.get("from_groups") or []:
        for host in groups.get(group, []):
            addr = hostvars[host].get("private_address")
            if not addr:
                raise AnsibleFilterError(f"firewall rule {rule.get('name')!r}: host {host} has no private_address")
            out.append(str(addr))
    out += [str(s) for s in (rule.get("from_cidrs") or []) + (rule.get("sources") or [])]
    return list(dict.fromkeys(out))


def common_nft_rules(
    rules: list[Mapping[str, Any]],
    groups: Mapping[str, list[str]] | None = None,
    hostvars: Mapping[str, Any] | None = None,
) -> list[str]:
    """One nftables rule line per address family of every declaration."""
    lines = []
    for rule in rules:
        proto = rule.get("proto", "tcp")
        if proto not in ("tcp", "udp"):
            raise AnsibleFilterError(f"firewall rule {rule.get('name')!r}: proto must be tcp or udp")
        ports = _ports(rule.get("port"), str(rule.get("name")))
        name = re.sub(r'["\\\n]', "'", str(rule.get("name") or f"{proto} {ports}"))[:120]
        tail = f'{proto} dport {ports} accept comment "{name}"'
        if not any(k in rule for k in ("from_groups", "from_cidrs", "sources")):
            lines.append(tail)
            continue
        sources = _sources(rule, groups or {}, hostvars or {})
        v4 = [s for s in sources if ":" not in s]
        v6 = [s for s in sources if ":" in s]
        if v4:
            lines.append(f"ip saddr {{ {', '.join(v4)} }} {tail}")
        if v6:
            lines.append(f"ip6 saddr {{ {', '.join(v6)} }} {tail}")
    return lines


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"common_nft_rules": common_nft_rules}
