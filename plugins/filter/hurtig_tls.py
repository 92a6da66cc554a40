"""Whether a node's certificate can stay as it is, from one read of it.

hurtig_tls_cert_current(info, want): `info` is community.crypto.x509_certificate_info's result for the
installed certificate (with valid_at.renewal), read with failed_when false (a missing file
gives no fields). True only when every property the role asks for holds: the node's name and
SANs, the key usages, the node's current key (SHA-256 fingerprint of the public key), the
CA (the certificate's authority key id is the CA's subject key id) and a validity beyond the
renewal window. Anything else (a field missing, a CA without a subject key id) is False: the
role then asks the signing module, which decides as before. A False is never wrong, only
slower; a True skips the request and the signature.
"""

from __future__ import annotations

from typing import Any

# x509_certificate_info names usages as OpenSSL prints them; the CSR module takes these keys
USAGE_NAMES = {
    "digitalSignature": "Digital Signature",
    "keyEncipherment": "Key Encipherment",
    "serverAuth": "TLS Web Server Authentication",
    "clientAuth": "TLS Web Client Authentication",
}


def _names(usages: list[str]) -> set[str]:
    return {USAGE_NAMES.get(u, u) for u in usages}


def hurtig_tls_cert_current(info: dict[str, Any], want: dict[str, Any]) -> bool:
    """`want`: key_fingerprint, ca_key_id, common_name, names, key_usage, extended_key_usage."""
    if (
        not isinstance(info, dict)
        or "valid_at" not in info
        or not want.get("key_fingerprint")
        or not want.get("ca_key_id")
    ):
        return False
    return bool(
        info["valid_at"].get("renewal") is True
        and (info.get("public_key_fingerprints") or {}).get("sha256") == want["key_fingerprint"]
        and info.get("authority_key_identifier") == want["ca_key_id"]
        and (info.get("subject") or {}).get("commonName") == want["common_name"]
        and set(info.get("subject_alt_name") or []) == set(want["names"])
        and set(info.get("key_usage") or []) == _names(want["key_usage"])
        and set(info.get("extended_key_usage") or []) == _names(want["extended_key_usage"])
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"hurtig_tls_cert_current": hurtig_tls_cert_current}
