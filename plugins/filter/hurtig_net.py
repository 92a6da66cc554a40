"""Addresses of the inventory's nodes, as every role that listens or scrapes writes them.

- hurtig_hostport(address, port): `address:port`, an IPv6 address in brackets.
- hurtig_scrape_targets(hosts, hostvars, port, prefix='', suffix=''): one Prometheus
  static_config per host, `<prefix><private_address>:<port><suffix>` (else ansible_host,
  else the name) labelled `node: <inventory name>`; the monitoring role's scrape jobs are
  built from these (a probe's target with prefix `https://` and suffix `/healthz`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def hurtig_hostport(address: str, port: int) -> str:
    address = str(address)
    return f"[{address}]:{int(port)}" if ":" in address else f"{address}:{int(port)}"


def hurtig_scrape_targets(
    hosts: list[str], hostvars: Mapping[str, Any], port: int, prefix: str = "", suffix: str = ""
) -> list[dict[str, Any]]:
    configs = []
    for host in hosts:
        address = hostvars[host].get("private_address") or hostvars[host].get("ansible_host") or host
        target = f"{prefix}{hurtig_hostport(address, port)}{suffix}"
        configs.append({"targets": [target], "labels": {"node": str(host)}})
    return configs


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"hurtig_hostport": hurtig_hostport, "hurtig_scrape_targets": hurtig_scrape_targets}
