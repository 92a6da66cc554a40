"""The ingress's per-network limit key (filter nginx_ipv6_prefix_map of role nginx, the map
$hurtig_client_net): an IPv6 client is limited per /64, whatever its interface id, in every
text form nginx prints (RFC 5952)."""

from __future__ import annotations

import ipaddress
import random
import re

import pytest
from ansible.errors import AnsibleFilterError
from conftest import load_plugin

plugin = load_plugin("filter", "nginx_limits")


def key(addr: str, bits: int = 64) -> str:
    """The key nginx computes: the first entry whose regex matches $remote_addr."""
    text = ipaddress.ip_address(addr).compressed
    for entry in plugin.nginx_ipv6_prefix_map(bits):
        m = re.match(entry["regex"].replace("(?<", "(?P<"), text)
        if m:
            return re.sub(r"\$(\w+)", lambda v, m=m: m.group(v.group(1)), entry["value"])
    return "address:" + text  # the map's default, $binary_remote_addr


def network(addr: str, bits: int = 64) -> str:
    groups = ipaddress.IPv6Address(addr).exploded.split(":")[: bits // 16]
    return "6:" + ":".join(f"{int(g, 16):x}" for g in groups)


def test_ipv4_clients_are_limited_per_address():
    assert key("192.0.2.1") == "address:192.0.2.1" != key("192.0.2.2")


@pytest.mark.parametrize(
    "addr",
    ["2001:db8:1:2::1", "2001:db8::1", "2001:db8::1:2:3:4", "2001:0:0:ffff:1:0:1:ffff", "::1", "::", "fe80::1", "1::"],
)
def test_ipv6_clients_are_limited_per_64(addr):
    assert key(addr) == network(addr)


@pytest.mark.parametrize("bits", [48, 64])
def test_random_addresses_get_exactly_their_network(bits):
    rng = random.Random(bits)
    choices = [0, 0, 0, 1, 0xDB8, 0xFFFF]
    for _ in range(5000):
        ip = ipaddress.IPv6Address(":".join(f"{rng.choice(choices):x}" for _ in range(8)))
        if ip.ipv4_mapped:  # printed as ::ffff:a.b.c.d: an IPv4 client, limited per address
            assert key(str(ip), bits) == f"address:{ip.compressed}"
            continue
        assert key(str(ip), bits) == network(str(ip), bits), ip


def test_a_prefix_that_is_not_whole_groups_is_refused():
    with pytest.raises(AnsibleFilterError, match="multiple of 16"):
        plugin.nginx_ipv6_prefix_map(60)
