"""AMQP settings the API and the worker share: broker URLs whose password is read from a
file at every connect attempt, URL-encoded.

The roles pass `HURTIG_AMQP_URLS` (comma-separated, `{password}` in place of the password)
and `HURTIG_AMQP_PASSWORD_FILE`. Reading the file at each connect, not once at start, means
that a rotated password reaches a running process at its next reconnect, without a restart.
"""

from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import quote

PLACEHOLDER = "{password}"


def urls_from_env(env: dict[str, str]) -> list[str]:
    raw = env.get("HURTIG_AMQP_URLS") or env.get("HURTIG_AMQP_URL", "")
    return [u.strip() for u in raw.split(",") if u.strip()]


def resolve(template: str, password_file: str | None) -> str:
    """The URL to connect to: the placeholder replaced by the file's password, URL-encoded
    (a password may hold '@', ':', '/', '%' or '#')."""
    if not password_file or PLACEHOLDER not in template:
        return template
    password = Path(password_file).read_text().strip()
    return template.replace(PLACEHOLDER, quote(password, safe=""))


def next_delay(delay: float, maximum: float) -> float:
    """Exponential backoff with jitter, capped."""
    return min(maximum, delay * 2) * random.uniform(0.8, 1.2)
