"""The filter that lets a node's certificate stay (plugins/filter/hurtig_tls.py):
True only when every property the role asks for holds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins" / "filter"))

from hurtig_tls import hurtig_tls_cert_current

NAMES = ["DNS:stg-mq-1", "IP:10.213.7.21"]
INFO = {  # x509_certificate_info of a node certificate the role signed (fields it reads)
    "valid_at": {"renewal": True},
    "public_key_fingerprints": {"sha256": "e4:b8"},
    "authority_key_identifier": "1b:9b",
    "subject": {"commonName": "stg-mq-1"},
    "subject_alt_name": ["IP:10.213.7.21", "DNS:stg-mq-1"],
    "key_usage": ["Digital Signature"],
    "extended_key_usage": ["TLS Web Client Authentication", "TLS Web Server Authentication"],
}


def current(info: dict, fingerprint: str | None = "e4:b8", ca: str | None = "1b:9b", names: list[str] = NAMES) -> bool:
    want = {
        "key_fingerprint": fingerprint,
        "ca_key_id": ca,
        "common_name": "stg-mq-1",
        "names": names,
        "key_usage": ["digitalSignature"],
        "extended_key_usage": ["serverAuth", "clientAuth"],
    }
    return hurtig_tls_cert_current(info, want)


def test_a_matching_certificate_stays():
    assert current(INFO)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"valid_at": {"renewal": False}}, "expires within the renewal window"),
        ({"public_key_fingerprints": {"sha256": "00:00"}}, "another key"),
        ({"authority_key_identifier": "ff:ff"}, "another CA"),
        ({"authority_key_identifier": None}, "no authority key id"),
        ({"subject": {"commonName": "stg-mq-2"}}, "another name"),
        ({"subject_alt_name": ["DNS:stg-mq-1"]}, "an address missing"),
        ({"subject_alt_name": [*NAMES, "DNS:extra"]}, "a name too many"),
        ({"key_usage": ["Digital Signature", "Key Encipherment"]}, "other key usages"),
        ({"extended_key_usage": ["TLS Web Server Authentication"]}, "server only"),
    ],
)
def test_any_difference_asks_for_a_signature(change: dict, why: str):
    assert not current(INFO | change), why


def test_a_missing_certificate_key_or_ca_key_id_is_never_current():
    assert not current({"msg": "file not found", "failed": False})
    assert not current(INFO, fingerprint=None)
    assert not current(INFO, ca=None)
    assert not current(INFO, names=[*NAMES, "IP:10.0.0.9"])
