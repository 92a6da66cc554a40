"""A worker's acks reach the broker: Worker._ack queues each for the I/O loop's next turn
(no flush of its own), so these check that the turn comes, on a quiet connection and on the
way out after every handler thread got stuck."""

from __future__ import annotations

import time
from pathlib import Path

from test_worker import _worker_process, publish, wait_until


def test_an_ack_leaves_at_once_on_a_quiet_connection(broker, function_name, tmp_path):
    # Worker._ack queues the frame for the I/O loop's next turn: on a quiet connection too
    # that turn comes at once. Killed 0.3 s after its only job, the worker has acked it.
    queue = broker.declare_function(function_name)
    [job_id] = publish(broker, function_name)
    proc = _worker_process(broker, function_name, tmp_path / "record", "handlers:record")
    try:
        wait_until(lambda: f"done {job_id}" in _read(tmp_path / "record"), timeout=30)
        time.sleep(0.3)
    finally:
        proc.kill()
    proc.wait(timeout=30)
    time.sleep(1)  # the broker has seen the connection go: an unacked job would be back
    assert broker.count(queue) == 0


def test_every_handler_thread_stuck_exits_3_with_the_failed_job_acked(broker, function_name, tmp_path):
    # the one thread outlives the timeout: the job goes to the retry exchange and is acked,
    # the worker exits 3 for a restart (Worker.run) once the thread ends
    queue = broker.declare_function(function_name)
    publish(broker, function_name, payload={"seconds": 3})
    proc = _worker_process(broker, function_name, tmp_path / "r", "handlers:slow", HURTIG_TIMEOUT="0.5")
    try:
        assert proc.wait(timeout=30) == 3
    finally:
        proc.kill()
    wait_until(lambda: broker.count(queue) == 1)  # the retry, and not the job itself again
    time.sleep(1)
    assert broker.count(queue) == 1


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
