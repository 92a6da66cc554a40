"""The example handlers shipped with hurtig."""

from __future__ import annotations

import base64
import io
import time

import pytest
from PIL import Image

from hurtig.handler import JobContext
from hurtig.jobs import Rejected
from hurtig_examples import record, resize, sleep

JOB = JobContext("job-1", "resize", 0, "", None)


def test_sleep_one_second_per_dot():
    t0 = time.monotonic()
    assert sleep.handle({"task": "Hello.."}, JOB)["slept_s"] == 2
    assert 1.9 < time.monotonic() - t0 < 3
    assert sleep.handle("no dots", JOB)["slept_s"] == 0


def test_resize_writes_a_thumbnail_idempotently(tmp_path, monkeypatch):
    monkeypatch.setenv("HURTIG_OUTPUT_DIR", str(tmp_path))
    buf = io.BytesIO()
    Image.new("RGB", (800, 600), "red").save(buf, format="PNG")
    payload = {"image_b64": base64.b64encode(buf.getvalue()).decode(), "width": 200, "height": 200}
    first = resize.handle(payload, JOB)
    again = resize.handle(payload, JOB)  # a redelivered job overwrites the same file
    assert first == again
    assert first["size"] == [200, 150]
    with Image.open(tmp_path / "job-1.png") as img:
        assert img.size == (200, 150)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job-1.png"]


def test_resize_reads_only_under_the_allowed_input_directories(tmp_path, monkeypatch):
    inputs, outside = tmp_path / "in", tmp_path / "secret"
    inputs.mkdir(), outside.mkdir()
    monkeypatch.setenv("HURTIG_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("HURTIG_INPUT_DIRS", str(inputs))
    Image.new("RGB", (40, 40), "blue").save(inputs / "ok.png")
    Image.new("RGB", (40, 40), "blue").save(outside / "no.png")
    (inputs / "link.png").symlink_to(outside / "no.png")
    assert resize.handle({"source": str(inputs / "ok.png"), "width": 10, "height": 10}, JOB)["size"] == [10, 10]
    for name in (outside / "no.png", inputs / ".." / "secret" / "no.png", inputs / "link.png", "/etc/passwd"):
        with pytest.raises(Rejected, match="outside the allowed input directories"):
            resize.handle({"source": str(name), "width": 10, "height": 10}, JOB)


def test_sleep_milliseconds_for_the_drain_benchmark():
    t0 = time.monotonic()
    assert sleep.handle({"ms": 50}, JOB)["slept_s"] == 0.05
    assert 0.045 < time.monotonic() - t0 < 0.5


def test_record_writes_the_id_and_a_line_per_delivery(tmp_path, monkeypatch):
    monkeypatch.setenv("HURTIG_OUTPUT_DIR", str(tmp_path))
    before = time.time()
    record.handle({}, JOB)
    record.handle({}, JobContext("job-1", "record", 1, "", None))  # a redelivery
    assert (tmp_path / "job-1").read_text() == "1\n"
    lines = [line.split() for line in (tmp_path / "processed.log").read_text().splitlines()]
    assert [(job_id, attempt) for job_id, _, attempt in lines] == [("job-1", "0"), ("job-1", "1")]
    assert before <= float(lines[0][1]) <= time.time()
