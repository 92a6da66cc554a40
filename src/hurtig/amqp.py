"""AMQP settings the API and the worker share: broker URLs whose password is read from a
file at every connect attempt, URL-encoded.

The roles pass `HURTIG_AMQP_URLS` (comma-separated, `{password}` in place of the password)
and `HURTIG_AMQP_PASSWORD_FILE`. Reading the file at each connect, not once at start, means
that a rotated password reaches a running process at its next reconnect, without a restart.

`amqps://` URLs need `HURTIG_AMQP_CA_FILE` (the CA the broker's certificate is checked
against, host name included) and, for brokers that verify their clients, the client's
`HURTIG_AMQP_CERT_FILE` and `HURTIG_AMQP_KEY_FILE`. The files too are read at each connect.
"""

from __future__ import annotations

import random
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

PLACEHOLDER = "{password}"


def urls_from_env(env: dict[str, str]) -> list[str]:
    raw = env.get("HURTIG_AMQP_URLS") or env.get("HURTIG_AMQP_URL", "")
    return [u.strip() for u in raw.split(",") if u.strip()]


@dataclass(frozen=True)
class Tls:
    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None


def tls_from_env(env: dict[str, str], urls: list[str], program: str) -> Tls | None:
    """The TLS files for `amqps://` URLs; a program without the CA refuses to start (it
    would otherwise trust any certificate, or none)."""
    if not any(urlsplit(u).scheme == "amqps" for u in urls):
        return None
    ca = env.get("HURTIG_AMQP_CA_FILE")
    if not ca:
        raise SystemExit(f"{program}: amqps:// needs HURTIG_AMQP_CA_FILE (the CA that signed the broker's certificate)")
    cert, key = env.get("HURTIG_AMQP_CERT_FILE") or None, env.get("HURTIG_AMQP_KEY_FILE") or None
    if (cert is None) != (key is None):
        raise SystemExit(f"{program}: set both HURTIG_AMQP_CERT_FILE and HURTIG_AMQP_KEY_FILE, or neither")
    return Tls(ca, cert, key)


def ssl_context(tls: Tls) -> ssl.SSLContext:
    """A client context that verifies the broker's certificate and host name against the CA
    (TLS 1.2 at least) and presents the client certificate, if any."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


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


@dataclass(frozen=True)
class Target:
    """Where to connect, from an amqp(s):// URL whose password is already resolved."""

    host: str
    port: int
    tls: bool
    user: str
    password: str
    vhost: str
    heartbeat: int

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        tls = parts.scheme == "amqps"
        query = parse_qs(parts.query)
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (5671 if tls else 5672),
            tls=tls,
            user=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
            vhost=vhost,
            heartbeat=int(query.get("heartbeat", ["60"])[0]),
        )
