"""The job API reads a body whole and bounded however it arrives (a real RabbitMQ)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import requests
from test_api import Api


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
