"""The API's accepted-job path as a bare ASGI app, for bench/http_layers.py: the same key
check, JSON validation, job id, message and publisher (hurtig.publisher) as hurtig.api,
served by uvicorn (httptools, uvloop) instead of aiohttp. Only the success path and the
refusals the benchmark needs: a measurement of the HTTP layer, not a second API.

    uvicorn asgi_job:app --app-dir bench   (environment as for hurtig-api)
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from hurtig import api, auth, jobs
from hurtig.publisher import Brokers, Publisher, Unavailable

SETTINGS = api.Settings.from_env()
KEYS = auth.Keys(SETTINGS.keys_file) if SETTINGS.keys_file else None
PUBLISHER = Publisher(Brokers(SETTINGS.amqp_urls, SETTINGS.exchange, SETTINGS.confirm_timeout, tls=SETTINGS.amqp_tls))
NAMES = {name: json.dumps(name).encode() for name in SETTINGS.functions}
JSON = [(b"content-type", b"application/json")]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = JSON) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await PUBLISHER.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await PUBLISHER.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    path = scope["path"]
    if path == "/healthz":
        await answer(send, 200, b'{"status":"ok"}')
        return
    if path == "/readyz":
        await answer(send, 200 if PUBLISHER.ready else 503, b"{}")
        return
    parts = path.split("/")  # /v1/functions/<name>/jobs
    name = parts[3] if len(parts) == 5 and scope["method"] == "POST" else ""
    headers = dict(scope["headers"])
    client = KEYS.client(headers.get(b"authorization", b"").decode("latin-1")) if KEYS else None
    if name not in SETTINGS.functions or (KEYS and (client is None or not client.may_call(name))):
        await answer(send, 404, b"{}")
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    try:
        payload = orjson.loads(body)  # as hurtig.api
    except orjson.JSONDecodeError:
        await answer(send, 400, b"{}")
        return
    if jobs.too_deep(body, payload):
        await answer(send, 400, b"{}")
        return
    job_id = jobs.random_id()
    try:
        await PUBLISHER.publish(name, job_id, jobs.envelope(job_id, name, body, jobs.timestamp(), None))
    except Unavailable:
        await answer(send, 503, b"{}")
        return
    location = f"/v1/functions/{name}/jobs/{job_id}".encode()
    accepted = b'{"job_id":"' + job_id.encode() + b'","function":' + NAMES[name] + b',"status":"accepted"}'
    await answer(send, 202, accepted, [*JSON, (b"location", location)])
