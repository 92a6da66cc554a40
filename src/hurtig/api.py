"""The job API: accept a job, publish it as a persistent message, await the broker's
confirm, and only then answer 202. No confirm, no 202: a broker outage, an unroutable job
or a confirm timeout answer 503 with Retry-After; so does a function whose queue is over its
bound (the broker nacks: queue_full). Only a client with an API key scoped to the function
may submit (hurtig.auth): 401 without a valid key, 403 outside its scope.

    POST /v1/functions/{name}/jobs   JSON body, Authorization: Bearer <key> -> 202 {"job_id": ...}
    GET  /healthz                    the process is up
    GET  /readyz                     the broker connection is usable (200) or not (503)
    GET  /metrics                    Prometheus text format
    GET  /openapi.json               this API's OpenAPI description

aiohttp serves HTTP and hurtig.publisher publishes: one long-lived connection and confirm
channel per process, reconnected with backoff in the background. Configuration comes from
the environment (Settings.from_env).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from hurtig import amqp, auth, jobs, logs, openapi, serve
from hurtig.metrics import Metrics
from hurtig.publisher import Brokers, Publisher, Unavailable

log = logging.getLogger("hurtig.api")


@dataclass(frozen=True)
class Settings:
    amqp_urls: list[str]  # `{password}` stands for the password file's content (hurtig.amqp)
    functions: dict[str, str]  # function name -> queue (routing key = name)
    exchange: str = "hurtig.jobs"
    host: str = "127.0.0.1"
    port: int = 3000
    workers: int = 1
    max_body: int = 256 * 1024
    confirm_timeout: float = 5.0
    retry_after: int = 5
    backoff_max: float = 10.0
    amqp_password_file: str | None = None
    amqp_tls: amqp.Tls | None = None
    # API keys (hurtig.auth): the keys file; auth off only when asked for (a benchmark's baseline)
    keys_file: str | None = None
    auth: bool = True
    # seconds a stopping process keeps its open connections (hurtig.serve); more than the
    # ingress's upstream keepalive_timeout
    drain: float = 0.0
    # where the instance's processes share their metrics (hurtig.metrics); main() makes one
    metrics_dir: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        urls = amqp.urls_from_env(env)
        raw = env.get("HURTIG_FUNCTIONS")
        if raw is None and env.get("HURTIG_FUNCTIONS_FILE"):
            raw = Path(env["HURTIG_FUNCTIONS_FILE"]).read_text()
        if not urls or raw is None:
            raise SystemExit("hurtig-api: set HURTIG_AMQP_URL and HURTIG_FUNCTIONS (or HURTIG_FUNCTIONS_FILE)")
        functions = {f["name"]: f.get("queue", f["name"]) for f in json.loads(raw)}
        tls = amqp.tls_from_env(env, urls, "hurtig-api")
        auth_on = env.get("HURTIG_API_AUTH", "on") != "off"
        if auth_on:
            if not env.get("HURTIG_API_KEYS_FILE"):
                raise SystemExit("hurtig-api: set HURTIG_API_KEYS_FILE (API keys), or HURTIG_API_AUTH=off")
            auth.Keys(env["HURTIG_API_KEYS_FILE"])  # a missing or malformed file stops the start
        return cls(
            amqp_urls=urls,
            amqp_password_file=env.get("HURTIG_AMQP_PASSWORD_FILE") or None,
            amqp_tls=tls,
            functions=functions,
            exchange=env.get("HURTIG_EXCHANGE", "hurtig.jobs"),
            host=env.get("HURTIG_API_HOST", "127.0.0.1"),
            port=int(env.get("HURTIG_API_PORT", "3000")),
            workers=int(env.get("HURTIG_API_WORKERS", "0")) or (os.cpu_count() or 1),
            max_body=int(env.get("HURTIG_API_MAX_BODY", str(256 * 1024))),
            confirm_timeout=float(env.get("HURTIG_CONFIRM_TIMEOUT", "5")),
            retry_after=int(env.get("HURTIG_RETRY_AFTER", "5")),
            drain=float(env.get("HURTIG_API_DRAIN_S", "0")),
            keys_file=env.get("HURTIG_API_KEYS_FILE") if auth_on else None,
            auth=auth_on,
        )


PUBLISHER = web.AppKey("publisher", Publisher)
METRICS = web.AppKey("metrics", Metrics)
SETTINGS = web.AppKey("settings", Settings)
KEYS = web.AppKey("keys", auth.Keys)
NAMES = web.AppKey("names", dict[str, bytes])  # each function's name as a JSON string
JSON = "application/json"
PLAIN_NAME = re.compile(r"[A-Za-z0-9._~-]+")  # a path segment as it is, without { or %


def _problem(status: int, reason: str, detail: str, **headers: str) -> web.Response:
    body = json.dumps({"status": status, "error": reason, "detail": detail})
    return web.Response(status=status, text=body, content_type="application/problem+json", headers=headers)


def _reject(request: web.Request, status: int, reason: str, detail: str, **headers: str) -> web.Response:
    request.app[METRICS].rejected[reason, status] += 1
    return _problem(status, reason, detail, **headers)


def _admit(request: web.Request, app: web.Application, name: str) -> tuple[auth.Client | None, web.Response | None]:
    """Who sends the request, or why it may not submit to `name`: 401, 404, 403 or 429."""
    settings = app[SETTINGS]
    client: auth.Client | None = None
    if settings.auth:
        keys = app[KEYS]
        client = keys.client(request.headers.get("Authorization"))
        if client is None:
            wrong = "Authorization" in request.headers
            challenge = 'Bearer realm="hurtig"' + (', error="invalid_token"' if wrong else "")
            detail = "send a valid API key: Authorization: Bearer <key>"
            return None, _reject(request, 401, "unauthorized", detail, **{"WWW-Authenticate": challenge})
    if name not in settings.functions:
        return client, _reject(request, 404, "unknown_function", f"no function named {name!r}")
    if client is not None and not client.may_call(name):
        challenge = 'Bearer realm="hurtig", error="insufficient_scope"'
        detail = f"this API key may not call {name!r}"
        return client, _reject(request, 403, "forbidden", detail, **{"WWW-Authenticate": challenge})
    if client is not None and (wait := keys.wait(client)):
        detail = "too many requests with this API key: retry later"
        return client, _reject(request, 429, "rate_limited", detail, **{"Retry-After": str(math.ceil(wait))})
    return client, None


async def submit_job(request: web.Request, name: str = "") -> web.Response:
    name = name or request.match_info["name"]  # each function's route passes it; the pattern's: 404
    app = request.app  # each of its objects looked up once: this is the hot path
    settings = app[SETTINGS]
    client, refused = _admit(request, app, name)
    if refused is not None:
        return refused
    # the exact header needs no parsing; a parameter (charset=utf-8) goes through aiohttp's parser
    if request.headers.get("Content-Type") != JSON and request.content_type != JSON:
        return _reject(request, 415, "unsupported_media_type", "send the job as application/json")
    length = request.content_length
    if length is not None and length > settings.max_body:
        return _reject(request, 413, "too_large", f"the body may be at most {settings.max_body} bytes")
    content = request.content
    if length is not None and content.is_eof():
        raw = content.read_nowait()  # the whole body has arrived (within max_body, checked above)
    else:
        try:
            raw = await request.read()  # chunked or still arriving: aiohttp enforces max_body
        except web.HTTPRequestEntityTooLarge:
            return _reject(request, 413, "too_large", f"the body may be at most {settings.max_body} bytes")
    try:  # orjson: RFC 8259 strictly (no NaN, no lone surrogates), UTF-8 only, 5x json's speed
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _reject(request, 400, "invalid_json", "the body is not valid UTF-8 JSON")
    if jobs.too_deep(raw, payload):
        return _reject(request, 400, "too_deep", f"JSON nested deeper than {jobs.MAX_DEPTH} levels")
    key = request.headers.get("Idempotency-Key")
    if key is not None and not jobs.IDEMPOTENCY_KEY.match(key):
        return _reject(request, 400, "invalid_idempotency_key", "Idempotency-Key: 1 to 200 visible ASCII characters")
    job_id = jobs.new_id(client.name if client else "", name, key)
    quoted = app[NAMES][name]
    body = jobs.envelope(job_id, quoted, raw, jobs.timestamp(), key)
    metrics = app[METRICS]
    started = time.perf_counter()
    try:
        await app[PUBLISHER].publish(name, job_id, body)
    except Unavailable as exc:
        retry = {"Retry-After": str(settings.retry_after)}
        return _reject(request, 503, exc.reason, "the job was not accepted; retry later", **retry)
    metrics.observe(time.perf_counter() - started)
    metrics.accepted[name] += 1
    answer = b'{"job_id":"' + job_id.encode() + b'","function":' + quoted + b',"status":"accepted"}'
    headers = {"Content-Type": JSON, "Location": f"/v1/functions/{name}/jobs/{job_id}"}
    return web.Response(body=answer, status=202, headers=headers)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if request.app[PUBLISHER].ready:
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "broker unavailable"}, status=503, headers={"Retry-After": "5"})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text=request.app[METRICS].render(request.app[PUBLISHER].ready), content_type="text/plain")


async def openapi_json(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response(openapi.document(sorted(settings.functions), jobs.IDEMPOTENCY_KEY.pattern, settings.auth))


@web.middleware
async def no_unexpected_5xx(request: web.Request, handler: Any) -> web.StreamResponse:
    """Anything unexpected becomes a 503 with Retry-After: the job was not accepted."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error", extra={"path": request.path})
        return _reject(request, 503, "internal", "the job was not accepted; retry later", **{"Retry-After": "5"})


def make_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.max_body, middlewares=[no_unexpected_5xx])
    app[SETTINGS] = settings
    app[NAMES] = {name: json.dumps(name).encode() for name in settings.functions}
    app[METRICS] = Metrics(settings.metrics_dir)
    brokers = Brokers(
        settings.amqp_urls,
        settings.exchange,
        settings.confirm_timeout,
        password_file=settings.amqp_password_file,
        tls=settings.amqp_tls,
        backoff_max=settings.backoff_max,
    )
    app[PUBLISHER] = Publisher(brokers)
    if settings.auth:
        assert settings.keys_file
        app[KEYS] = auth.Keys(settings.keys_file)

    async def share_metrics() -> None:
        while True:
            with contextlib.suppress(OSError):  # a full disk: the next second tries again
                app[METRICS].share(app[PUBLISHER].ready)
            await asyncio.sleep(1)

    async def lifecycle(app: web.Application) -> Any:
        await app[PUBLISHER].start()
        sharing = asyncio.create_task(share_metrics())
        yield
        sharing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sharing
        await app[PUBLISHER].stop()

    app.cleanup_ctx.append(lifecycle)
    # each function's own path: matched as a string, before the pattern that any other takes
    for name in settings.functions:
        if PLAIN_NAME.fullmatch(name):
            app.router.add_post(f"/v1/functions/{name}/jobs", functools.partial(submit_job, name=name))
    app.router.add_post("/v1/functions/{name}/jobs", submit_job)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi_json)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hurtig-api", description="hurtig job API")
    parser.add_argument("--workers", type=int, default=None, help="processes (default HURTIG_API_WORKERS or CPUs)")
    args = parser.parse_args(argv)
    logs.setup(os.environ.get("HURTIG_LOG_LEVEL", "INFO"))
    settings = Settings.from_env()
    workers = args.workers or settings.workers
    # one directory per instance: every scrape sees the figures of all its processes
    settings = dataclasses.replace(settings, metrics_dir=tempfile.mkdtemp(prefix="hurtig-api-metrics-"))
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(serve.BACKLOG)
    sock.set_inheritable(True)
    log.info("listening", extra={"host": settings.host, "port": settings.port, "workers": workers})
    # grace before SIGKILL: the drain, then a publish awaiting its confirm, then margin
    grace = settings.drain + settings.confirm_timeout + 2
    try:
        return serve.supervise(
            lambda: serve.serve(lambda: make_app(settings), sock, settings.drain), sock, workers, grace
        )
    finally:
        shutil.rmtree(settings.metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
