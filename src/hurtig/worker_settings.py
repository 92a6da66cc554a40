"""A worker's configuration, from the environment its container gets (roles/worker)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from hurtig import amqp
from hurtig.health import WORKER_HEALTH_FILE, worker_health_file


@dataclass(frozen=True)
class Settings:
    amqp_urls: list[str]
    function: str
    queue: str
    handler: str
    prefetch: int = 1
    max_retries: int = 3
    timeout: float = 60.0
    retry_exchange: str = "hurtig.retry"
    dead_exchange: str = "hurtig.dead"
    stop_grace: float = 30.0
    health_file: str = WORKER_HEALTH_FILE
    backoff_max: float = 30.0
    amqp_password_file: str | None = None
    amqp_tls: amqp.Tls | None = None
    metrics_dir: str | None = None
    metrics_name: str = "worker"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        urls = amqp.urls_from_env(env)
        missing = [k for k in ("HURTIG_FUNCTION", "HURTIG_QUEUE", "HURTIG_HANDLER") if not env.get(k)]
        if not urls or missing:
            raise SystemExit(f"hurtig-worker: set {', '.join(missing or ['HURTIG_AMQP_URL'])}")
        return cls(
            amqp_urls=urls,
            amqp_password_file=env.get("HURTIG_AMQP_PASSWORD_FILE") or None,
            amqp_tls=amqp.tls_from_env(env, urls, "hurtig-worker"),
            function=env["HURTIG_FUNCTION"],
            queue=env["HURTIG_QUEUE"],
            handler=env["HURTIG_HANDLER"],
            prefetch=int(env.get("HURTIG_PREFETCH", "1")),
            max_retries=int(env.get("HURTIG_MAX_RETRIES", "3")),
            timeout=float(env.get("HURTIG_TIMEOUT", "60")),
            retry_exchange=env.get("HURTIG_RETRY_EXCHANGE", "hurtig.retry"),
            dead_exchange=env.get("HURTIG_DEAD_EXCHANGE", "hurtig.dead"),
            stop_grace=float(env.get("HURTIG_STOP_GRACE", "30")),
            health_file=worker_health_file(env),
            metrics_dir=env.get("HURTIG_METRICS_DIR") or None,
            metrics_name=env.get("HURTIG_METRICS_NAME") or env.get("HOSTNAME") or "worker",
        )
