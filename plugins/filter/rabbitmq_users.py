"""Filters that let the role compare users and permissions with what the broker has, read
once from the management API, so that an unchanged user costs no rabbitmqctl call.

rabbitmq_password_matches(password, password_hash, algorithm): the broker stores
base64(salt + H(salt + password)) with a 4-byte salt (rabbit_password_hashing_sha256 by
default); this says whether `password` is the one stored.
rabbitmq_users_to_update(desired, existing): the desired users ({user, password, tags})
whose user is missing, or whose password or tags differ, from /api/users.
rabbitmq_permissions_to_update(desired, existing, vhost): the desired users whose
configure/write/read permissions on vhost differ from /api/permissions.
rabbitmq_function_permissions(users, retry, dead): the broker users of the functions
(hurtig_function_users) with their least privilege: consume their own queues, publish to the
retry and dead-letter exchanges (topic exchanges), there only with their own functions'
names as routing keys (topic permissions: without them a user may use any routing key).
rabbitmq_topic_permissions_to_update(desired, existing, vhost): the {user, exchange, write,
read} entries that differ from /api/topic-permissions.
rabbitmq_users_to_delete(desired, existing, names): users that should not exist: tagged
FUNCTION_TAG but not desired (a removed function), or listed in `names` (guest, the shared
worker user of earlier versions, which could read every queue).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Collection
from typing import Any

# The tag of the functions' users: the role deletes a tagged user whose function is gone.
FUNCTION_TAG = "hurtig-function"

ALGORITHMS = {
    "rabbit_password_hashing_sha256": hashlib.sha256,
    "rabbit_password_hashing_sha512": hashlib.sha512,
    "rabbit_password_hashing_md5": hashlib.md5,
}


def rabbitmq_password_matches(
    password: str, password_hash: str, algorithm: str = "rabbit_password_hashing_sha256"
) -> bool:
    digest = ALGORITHMS.get(algorithm)
    try:
        raw = base64.b64decode(password_hash or "", validate=True)
    except (binascii.Error, ValueError):
        return False
    if digest is None or len(raw) < 5:
        return False
    salt = raw[:4]
    return hmac.compare_digest(raw[4:], digest(salt + str(password).encode()).digest())


def _tags(tags: Any) -> list[str]:
    if isinstance(tags, str):
        tags = tags.split(",")
    return sorted(t.strip() for t in tags or [] if t.strip())


def rabbitmq_users_to_update(desired: list[dict[str, Any]], existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    have = {u["name"]: u for u in existing}
    out = []
    for user in desired:
        cur = have.get(user["user"])
        if (
            cur is None
            or _tags(cur.get("tags")) != _tags(user.get("tags"))
            or not rabbitmq_password_matches(
                user["password"], cur.get("password_hash", ""), cur.get("hashing_algorithm", "")
            )
        ):
            out.append(user)
    return out


def rabbitmq_permissions_to_update(
    desired: list[dict[str, Any]], existing: list[dict[str, Any]], vhost: str
) -> list[dict[str, Any]]:
    have = {p["user"]: p for p in existing if p.get("vhost") == vhost}
    out = []
    for user in desired:
        cur = have.get(user["user"], {})
        if any(cur.get(k) != user[k] for k in ("configure", "write", "read")):
            out.append(user)
    return out


def _any_of(values: list[str]) -> str:
    return "^(" + "|".join(re.escape(v) for v in values) + ")$"


def rabbitmq_function_permissions(users: list[dict[str, Any]], retry: str, dead: str) -> list[dict[str, Any]]:
    out = []
    for u in users:
        routes = _any_of(u["names"])
        out.append(
            {
                "user": u["user"],
                "password": u["password"],
                "tags": FUNCTION_TAG,
                "configure": "^$",
                "write": _any_of([retry, dead]),
                "read": _any_of(u["queues"]),
                "topic": [{"exchange": x, "write": routes, "read": "^$"} for x in (retry, dead)],
            }
        )
    return out


def rabbitmq_topic_permissions_to_update(
    desired: list[dict[str, Any]], existing: list[dict[str, Any]], vhost: str
) -> list[dict[str, Any]]:
    have = {(p["user"], p["exchange"]): p for p in existing if p.get("vhost") == vhost}
    out = []
    for user in desired:
        for topic in user.get("topic", []):
            cur = have.get((user["user"], topic["exchange"]), {})
            if any(cur.get(k) != topic[k] for k in ("write", "read")):
                out.append({"user": user["user"], **topic})
    return out


def rabbitmq_users_to_delete(
    desired: list[dict[str, Any]], existing: list[dict[str, Any]], names: Collection[str] = ()
) -> list[str]:
    keep = {u["user"] for u in desired}
    return sorted(
        u["name"]
        for u in existing
        if u["name"] not in keep and (FUNCTION_TAG in _tags(u.get("tags")) or u["name"] in names)
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "rabbitmq_password_matches": rabbitmq_password_matches,
            "rabbitmq_users_to_update": rabbitmq_users_to_update,
            "rabbitmq_permissions_to_update": rabbitmq_permissions_to_update,
            "rabbitmq_function_permissions": rabbitmq_function_permissions,
            "rabbitmq_topic_permissions_to_update": rabbitmq_topic_permissions_to_update,
            "rabbitmq_users_to_delete": rabbitmq_users_to_delete,
        }
