"""hurtig.jobs: the ids, timestamps and depth check the API gives every job."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from hurtig import jobs


def test_an_idempotency_key_gives_the_same_id_per_client_and_function() -> None:
    first = jobs.new_id("shop", "resize", "order-42")
    assert first == jobs.new_id("shop", "resize", "order-42")
    assert len({first, jobs.new_id("bank", "resize", "order-42"), jobs.new_id("shop", "record", "order-42")}) == 3
    assert uuid.UUID(first).version == 5
    # the same ids as uuid.uuid5, which the API used before (a retried request keeps its id)
    for client, function, key in [("shop", "resize", "order-42"), ("", "x", 'ä"\\'), ("a\nb", "f", "k")]:
        expected = uuid.uuid5(jobs.IDEMPOTENCY_NAMESPACE, f"{client}\n{function}\n{key}")
        assert jobs.new_id(client, function, key) == str(expected)


def test_without_a_key_every_id_is_a_new_random_uuid() -> None:
    ids = [jobs.new_id("shop", "resize", None) for _ in range(600)]  # more than one pool of 256
    assert len(set(ids)) == 600
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


def test_the_timestamp_is_iso_8601_in_utc_with_microseconds() -> None:
    stamp = jobs.timestamp()
    parsed = datetime.fromisoformat(stamp)
    assert stamp.endswith("+00:00") and len(stamp) == len("2026-11-29T05:00:00.000001+00:00")
    assert abs(parsed.timestamp() - datetime.now().timestamp()) < 5


def test_depth_counts_nested_arrays_and_objects() -> None:
    assert jobs.depth(1) == 0
    assert jobs.depth({"a": [1, {"b": []}]}) == 4
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    assert jobs.depth(deep) == 5001  # no recursion limit


def test_too_deep_walks_only_a_body_with_enough_brackets() -> None:
    for levels in (jobs.MAX_DEPTH, jobs.MAX_DEPTH + 1):
        value: object = 1
        for _ in range(levels):
            value = [value]
        raw = json.dumps(value).encode()
        assert jobs.too_deep(raw, value) is (levels > jobs.MAX_DEPTH)
    brackets_in_a_string = json.dumps(["[" * 100, {"a": "{" * 100}])
    assert not jobs.too_deep(brackets_in_a_string.encode(), json.loads(brackets_in_a_string))


def test_the_envelope_copies_plain_strings_and_escapes_the_others() -> None:
    for key in ("order-42", 'q"uote', "back\\slash", "ctl\x01", "ümlaut", "tab\t", "", "\x7f"):
        stamp = "2026-11-29T05:00:00.000001+00:00"
        job_id = jobs.new_id("tests", "record", key or None)  # the ids the API gives, copied as they are
        body = jobs.envelope(job_id, b'"record"', b'{"a": 1}', stamp, key)
        assert json.loads(body)["idempotency_key"] == key
        assert json.loads(body) == json.loads(jobs.Job(job_id, "record", {"a": 1}, stamp, key).to_body())


def test_a_retry_keeps_the_headers_and_counts_the_attempt() -> None:
    headers = jobs.retry_headers({"x-trace": "t1", jobs.ATTEMPT: 1}, 2, ValueError("x" * 2000))
    assert headers["x-trace"] == "t1" and headers[jobs.ATTEMPT] == 2
    assert headers[jobs.ERROR].startswith("ValueError: xxx") and len(headers[jobs.ERROR]) == 1000


def test_a_dead_letter_says_why_what_and_when() -> None:
    headers = jobs.dead_headers(None, "max_retries", TimeoutError("too slow"))
    assert headers[jobs.DEAD_REASON] == "max_retries"
    assert (headers[jobs.ERROR], headers[jobs.ERROR_TYPE]) == ("TimeoutError: too slow", "TimeoutError")
    assert datetime.fromisoformat(headers[jobs.FAILED_AT]).tzinfo is not None
