"""API keys (hurtig.auth) through the running API: 401 without a valid key, 403 outside its
scope, Idempotency-Keys scoped per client, rotation and revocation without a restart."""

from __future__ import annotations

import io
import json
import time
import uuid

import pytest
import requests
from test_api import Api

from hurtig import api as api_module
from hurtig import auth

OLD, NEW, OTHER = "acme-old-key-0123456789abcdef", "acme-new-key-0123456789abcdef", "other-key-0123456789abcdefgh"


@pytest.fixture(scope="module")
def two(broker):
    """Two functions; client acme may call the first only, client other both."""
    a, b = (f"k{uuid.uuid4().hex[:8]}" for _ in range(2))
    queues = {a: broker.declare_function(a), b: broker.declare_function(b)}
    keys = [
        {"name": "acme", "sha256": [auth.digest(OLD)], "functions": [a]},
        {"name": "other", "sha256": auth.digest(OTHER), "functions": ["*"]},
    ]
    api = Api(broker, queues, keys=keys, key=OLD)
    yield api, a, b, queues
    api.close()


def problem(r: requests.Response, status: int, error: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["error"] == error


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, 'Bearer realm="hurtig"'),
        ("Bearer wrong-key-0123456789abcdef", 'Bearer realm="hurtig", error="invalid_token"'),
        (f"Basic {OLD}", 'Bearer realm="hurtig", error="invalid_token"'),
        ("Bearer short", 'Bearer realm="hurtig", error="invalid_token"'),
        (f"Bearer {OLD} extra", 'Bearer realm="hurtig", error="invalid_token"'),
    ],
)
def test_no_key_or_a_wrong_one_is_401_and_nothing_is_queued(two, broker, authorization, challenge):
    api, a, _, queues = two
    headers = {"Content-Type": "application/json"} | ({"Authorization": authorization} if authorization else {})
    r = requests.post(f"{api.base}/v1/functions/{a}/jobs", data=b"{}", headers=headers, timeout=10)
    problem(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"] == challenge
    assert OLD not in r.text
    assert broker.count(queues[a]) == 0


def test_a_key_is_scoped_to_its_functions(two, broker):
    api, a, b, queues = two
    assert api.post(a).status_code == 202
    r = api.post(b)
    problem(r, 403, "forbidden")
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert api.post(b, Authorization=f"bearer {OTHER}").status_code == 202  # the scheme is case-insensitive
    assert (broker.count(queues[a]), broker.count(queues[b])) == (1, 1)
    broker.get_all(queues[a]), broker.get_all(queues[b])


def test_idempotency_keys_are_scoped_per_client(two, broker):
    api, a, b, queues = two
    mine = api.post(b, Authorization=f"Bearer {OTHER}", **{"Idempotency-Key": "order-1"}).json()["job_id"]
    again = api.post(b, Authorization=f"Bearer {OTHER}", **{"Idempotency-Key": "order-1"}).json()["job_id"]
    assert mine == again
    theirs = api.post(a, **{"Idempotency-Key": "order-1"}).json()["job_id"]
    assert theirs != mine
    broker.get_all(queues[a]), broker.get_all(queues[b])


def test_rotation_and_revocation_need_no_restart(two, broker):
    api, a, _, queues = two
    entries = json.loads(api.keys_file.read_text())
    entries[0]["sha256"] = [auth.digest(OLD), auth.digest(NEW)]  # rotation: both valid
    api.keys_file.write_text(json.dumps(entries))
    time.sleep(1.2)  # the file is looked at at most once a second
    idem = {"Idempotency-Key": "rotated"}
    old_job = api.post(a, **idem).json()["job_id"]
    new_job = api.post(a, Authorization=f"Bearer {NEW}", **idem).json()["job_id"]
    assert old_job == new_job  # the same client: a retry with its new key is the same job
    entries[0]["sha256"] = [auth.digest(NEW)]  # revocation of the old key
    api.keys_file.write_text(json.dumps(entries))
    time.sleep(1.2)
    problem(api.post(a), 401, "unauthorized")
    assert api.post(a, Authorization=f"Bearer {NEW}").status_code == 202
    api.keys_file.write_text("not json")  # a broken file: the previous keys stay valid
    time.sleep(1.2)
    assert api.post(a, Authorization=f"Bearer {NEW}").status_code == 202
    metrics = requests.get(f"{api.base}/metrics", timeout=5).text
    assert 'hurtig_api_jobs_rejected_total{reason="unauthorized",status="401"}' in metrics
    broker.get_all(queues[a])


def test_a_client_over_its_rate_gets_429_and_the_others_do_not(broker):
    """rate 2/s with a burst of 3 in this (single) API process: three quick requests pass,
    the fourth gets 429 with Retry-After; another client is not limited; a second later one
    more passes."""
    name = f"k{uuid.uuid4().hex[:8]}"
    queues = {name: broker.declare_function(name)}
    keys = [
        {"name": "limited", "sha256": [auth.digest(OLD)], "functions": ["*"], "rate": 2, "burst": 3},
        {"name": "other", "sha256": [auth.digest(OTHER)], "functions": ["*"]},
    ]
    api = Api(broker, queues, keys=keys, key=OLD)
    try:
        codes = [api.post(name).status_code for _ in range(3)]
        assert codes == [202] * 3
        r = api.post(name)
        problem(r, 429, "rate_limited")
        assert r.headers["Retry-After"] == "1"
        assert all(api.post(name, Authorization=f"Bearer {OTHER}").status_code == 202 for _ in range(5))
        time.sleep(0.6)
        assert api.post(name).status_code == 202
        metrics = requests.get(f"{api.base}/metrics", timeout=5).text
        assert 'hurtig_api_jobs_rejected_total{reason="rate_limited",status="429"} 1' in metrics
    finally:
        api.close()
    assert len(broker.get_all(queues[name])) == 9


def test_the_openapi_document_names_the_security_scheme_and_every_answer(two):
    api, *_ = two
    doc = requests.get(f"{api.base}/openapi.json", timeout=5).json()
    post = doc["paths"]["/v1/functions/{name}/jobs"]["post"]
    assert post["security"] == [{"apiKey": []}]
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert {"202", "400", "401", "403", "404", "413", "415", "429", "503"} <= set(post["responses"])


def test_the_api_refuses_to_start_without_a_valid_keys_file(tmp_path):
    env = {"HURTIG_AMQP_URL": "amqp://u@h/v", "HURTIG_FUNCTIONS": "[]"}
    with pytest.raises(SystemExit, match="HURTIG_API_KEYS_FILE"):
        api_module.Settings.from_env(env)
    bad = tmp_path / "keys.json"
    bad.write_text(json.dumps([{"name": "x", "sha256": "not hex", "functions": ["*"]}]))
    with pytest.raises(SystemExit, match="sha256"):
        api_module.Settings.from_env(env | {"HURTIG_API_KEYS_FILE": str(bad)})
    assert api_module.Settings.from_env(env | {"HURTIG_API_AUTH": "off"}).auth is False


def test_hash_command_prints_what_the_inventory_stores(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(OLD + "\n"))
    assert auth.main(["hurtig.auth", "hash"]) == 0
    assert capsys.readouterr().out.strip() == auth.digest(OLD)
