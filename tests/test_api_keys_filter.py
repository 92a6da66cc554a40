"""The filter hurtig_api_keys (role hurtig): the inventory's API keys checked against the
functions list, normalised into the keys file the API reads (hurtig.auth)."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from conftest import load_plugin

from hurtig import auth

plugin = load_plugin("filter", "hurtig_api_keys")
FUNCTIONS = [{"name": "record"}, {"name": "resize"}]
A, B = "a" * 64, "b" * 64


def test_entries_are_normalised_into_what_the_api_reads():
    keys = [
        {"name": "shop", "sha256": A, "functions": ["resize", "record", "record"]},
        {"name": "ops", "sha256": [B], "functions": ["*"]},
    ]
    out = plugin.hurtig_api_keys(keys, FUNCTIONS)
    assert out == [
        {"name": "shop", "sha256": [A], "functions": ["record", "resize"]},
        {"name": "ops", "sha256": [B], "functions": ["*"]},
    ]
    clients = dict(auth.parse(json.dumps(out)))
    assert clients[A].name == "shop" and clients[A].may_call("resize") and not clients[A].may_call("sleep")
    assert clients[B].may_call("anything")


def test_a_clients_rate_is_shared_among_the_api_processes():
    keys = [
        {"name": "shop", "sha256": A, "functions": ["*"], "rate": 100, "burst": 300},
        {"name": "slow", "sha256": B, "functions": ["*"], "rate": 2},  # burst: the rate
    ]
    out = plugin.hurtig_api_keys(keys, FUNCTIONS, 1 / 4)  # two API nodes of two processes
    assert (out[0]["rate"], out[0]["burst"]) == (25.0, 75.0)
    assert (out[1]["rate"], out[1]["burst"]) == (0.5, 1.0)  # at least one request at once
    clients = dict(auth.parse(json.dumps(out)))
    assert (clients[A].rate, clients[A].burst) == (25.0, 75.0)
    assert "rate" not in plugin.hurtig_api_keys([{"name": "x", "sha256": A, "functions": ["*"]}], FUNCTIONS)[0]


def test_a_token_bucket_allows_its_burst_then_its_rate():
    bucket = auth.Bucket(rate=2, burst=3, tokens=3, stamp=0)
    assert [bucket.take(0) for _ in range(3)] == [0, 0, 0]
    assert bucket.take(0) == 0.5  # the next token in half a second
    assert bucket.take(0.5) == 0
    assert bucket.take(10) == 0 and bucket.tokens == 2  # refilled up to the burst, not beyond


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"name": "x"}, "must be a list"),
        ([{"name": "Bad Name", "sha256": A, "functions": ["*"]}], "name must match"),
        ([{"name": "x", "sha256": "the key itself", "functions": ["*"]}], "sha256 must be one or more SHA-256"),
        ([{"name": "x", "sha256": A.upper(), "functions": ["*"]}], "64 lowercase hex"),
        ([{"name": "x", "sha256": A, "functions": []}], "functions must be a non-empty list"),
        ([{"name": "x", "sha256": A, "functions": ["nope"]}], "no function named nope"),
        ([{"name": "x", "sha256": A, "functions": ["*"], "key": "k"}], "unknown keys ['key']"),
        ([{"name": "x", "sha256": A, "functions": ["*"], "rate": 0}], "rate must be a number > 0"),
        ([{"name": "x", "sha256": A, "functions": ["*"], "rate": "fast"}], "rate must be a number > 0"),
        ([{"name": "x", "sha256": A, "functions": ["*"], "burst": 5}], "burst needs a rate"),
        (
            [{"name": "x", "sha256": A, "functions": ["*"]}, {"name": "x", "sha256": B, "functions": ["*"]}],
            "name used twice",
        ),
        (
            [{"name": "x", "sha256": A, "functions": ["*"]}, {"name": "y", "sha256": [A], "functions": ["*"]}],
            "a sha256 is used twice",
        ),
    ],
)
def test_errors_are_named(keys, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plugin.hurtig_api_keys(keys, FUNCTIONS)
