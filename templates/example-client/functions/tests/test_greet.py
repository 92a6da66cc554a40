"""The client's tests of its own function: no broker, no platform needed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from acme_functions import greet


def test_greets_by_name() -> None:
    assert greet.greeting({"name": " Ola "}) == "Hello, Ola!\n"


@pytest.mark.parametrize("payload", [{}, {"name": ""}, {"name": 42}, ["Ola"], None])
def test_a_job_without_a_name_is_rejected(payload: object) -> None:
    with pytest.raises(Exception, match="needs a name") as info:
        greet.greeting(payload)
    assert type(info.value).__name__ == "Rejected"


def test_handle_writes_the_greeting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HURTIG_OUTPUT_DIR", str(tmp_path))
    greet.handle({"name": "Kari"}, SimpleNamespace(job_id="j1"))
    assert (tmp_path / "greet-j1").read_text() == "Hello, Kari!\n"
    assert [p.name for p in tmp_path.iterdir()] == ["greet-j1"]
