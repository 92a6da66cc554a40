"""common_nft_rules: the roles' firewall declarations rendered as nftables rules."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from conftest import load_plugin

plugin = load_plugin("filter", "common_firewall")
rules = plugin.common_nft_rules

GROUPS = {"api": ["a1", "a2"], "workers": ["w1"], "ingress": ["i1"], "monitoring": []}
HOSTVARS = {
    "a1": {"private_address": "10.1.0.2"},
    "a2": {"private_address": "10.1.0.3"},
    "w1": {"private_address": "fd00::31"},
    "i1": {"private_address": "10.1.0.10"},
}


def test_no_sources_admits_anyone():
    assert rules([{"name": "web", "port": [80, 443]}]) == ['tcp dport { 80, 443 } accept comment "web"']


def test_groups_become_their_private_addresses_per_family():
    out = rules([{"name": "amqp", "port": 5672, "from_groups": ["api", "workers"]}], GROUPS, HOSTVARS)
    assert out == [
        'ip saddr { 10.1.0.2, 10.1.0.3 } tcp dport 5672 accept comment "amqp"',
        'ip6 saddr { fd00::31 } tcp dport 5672 accept comment "amqp"',
    ]


def test_cidrs_and_groups_together_without_duplicates():
    out = rules(
        [{"name": "m", "port": "35672-35682", "from_groups": ["ingress"], "from_cidrs": ["10.1.0.10", "192.0.2.0/24"]}],
        GROUPS,
        HOSTVARS,
    )
    assert out == ['ip saddr { 10.1.0.10, 192.0.2.0/24 } tcp dport 35672-35682 accept comment "m"']


@pytest.mark.parametrize(
    "rule",
    [
        {"name": "metrics", "port": 15692, "from_groups": ["monitoring"], "from_cidrs": []},
        {"name": "metrics", "port": 15692, "from_groups": ["no-such-group"]},
        {"name": "metrics", "port": 15692, "from_cidrs": []},
    ],
)
def test_restricted_rule_with_no_sources_admits_no_one(rule):
    assert rules([rule], GROUPS, HOSTVARS) == []


def test_udp_and_the_legacy_sources_key():
    assert rules([{"port": 53, "proto": "udp", "sources": ["10.0.0.0/8"]}]) == [
        'ip saddr { 10.0.0.0/8 } udp dport 53 accept comment "udp 53"'
    ]


def test_quotes_in_names_cannot_break_the_rule():
    assert rules([{"name": 'a "b"\n', "port": 1}]) == ["tcp dport 1 accept comment \"a 'b''\""]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "x", "port": "http"}, "bad port"),
        ({"name": "x", "port": []}, "bad port"),
        ({"name": "x", "port": 1, "proto": "sctp"}, "proto must be tcp or udp"),
        ({"name": "x", "port": 1, "from_groups": ["bad"]}, "host b1 has no private_address"),
    ],
)
def test_bad_declarations_are_refused(rule, message):
    with pytest.raises(AnsibleFilterError, match=message):
        rules([rule], {"bad": ["b1"]}, {"b1": {}})
