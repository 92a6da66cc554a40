"""The job API reads a body whole and bounded however it arrives (a real RabbitMQ)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from test_api import Api

from hurtig.api import Settings, make_app


@pytest.fixture(scope="module")
def api_env(broker) -> Iterator[tuple[Api, str, str]]:
    name = f"body{uuid.uuid4().hex[:8]}"
    queue = broker.declare_function(name)
    api = Api(broker, {name: queue})  # max_body 4096
    yield api, name, queue
    api.close()


def test_a_chunked_body_or_a_charset_is_read_whole_and_bounded(api_env, broker):
    """A body without Content-Length (chunked) is read to its end, and max_body (4096 here)
    still holds; `application/json; charset=utf-8` is JSON. The API's fast path (a body
    already whole, the exact header) must not change either."""
    api, name, queue = api_env
    url, auth_header = f"{api.base}/v1/functions/{name}/jobs", {"Authorization": f"Bearer {api.key}"}

    def chunked(*parts: bytes, content_type: str = "application/json") -> requests.Response:
        headers = {**auth_header, "Content-Type": content_type}
        return requests.post(url, data=iter(parts), headers=headers, timeout=10)

    r = chunked(b'{"task": ', b'"in two chunks"}')
    assert r.status_code == 202, r.text
    assert chunked(b"[" + b"1," * 2100, b"1]").status_code == 413  # 4,203 bytes
    r = api.post(name, {"task": "charset"}, **{"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 202, r.text
    bodies = [json.loads(body)["payload"] for _, body in broker.get_all(queue)]
    assert bodies == [{"task": "in two chunks"}, {"task": "charset"}]


def test_each_function_has_its_own_route_and_any_other_name_the_pattern():
    """A function's path is matched as a string (no pattern on the hot path); any other
    name still reaches the handler through the pattern, which answers 404 for it."""
    app = make_app(Settings(amqp_urls=["amqp://x"], functions={"record": "jobs.record"}, auth=False))

    async def resolve(path: str) -> web.AbstractResource:
        match = await app.router.resolve(make_mocked_request("POST", path, app=app))
        return match.route.resource

    own, other = asyncio.run(resolve("/v1/functions/record/jobs")), asyncio.run(resolve("/v1/functions/x/jobs"))
    assert isinstance(own, web.PlainResource) and own.canonical == "/v1/functions/record/jobs"
    assert isinstance(other, web.DynamicResource) and other.canonical == "/v1/functions/{name}/jobs"
