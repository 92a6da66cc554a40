"""The broker users of the functions' workers, and their passwords, derived from one secret.

hurtig_broker_password(secret, user): HMAC-SHA256 keyed with the Vault secret over the user
name, base64url without padding (43 characters). The inventory keeps one secret however many
functions it has; a worker node stores only the derived passwords of its own functions, so a
leaked password file gives neither the secret nor another function's password. Rotating the
secret rotates every function user.

hurtig_function_users(functions, secret): one entry per broker user named by the (checked)
functions list: {user, password, queues, names}, the queues it may consume and the routing
keys (function names) of its retry and dead-letter routes. Functions that name the same
`broker_user` share one entry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from ansible.errors import AnsibleFilterError

CONTEXT = b"hurtig broker user\x00"


def hurtig_broker_password(secret: Any, user: str) -> str:
    if not secret:
        raise AnsibleFilterError("hurtig_broker_password: the secret is empty")
    mac = hmac.new(str(secret).encode(), CONTEXT + str(user).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def hurtig_function_users(functions: list[dict[str, Any]], secret: Any) -> list[dict[str, Any]]:
    users: dict[str, dict[str, Any]] = {}
    for f in functions:
        user = users.setdefault(f["broker_user"], {"user": f["broker_user"], "queues": [], "names": []})
        user["queues"].append(f["queue"])
        user["names"].append(f["name"])
    for user in users.values():
        user["password"] = hurtig_broker_password(secret, user["user"])
    return sorted(users.values(), key=lambda u: u["user"])


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"hurtig_broker_password": hurtig_broker_password, "hurtig_function_users": hurtig_function_users}
