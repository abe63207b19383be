"""An execution the engine itself fails on (here: a task output the database refuses to store)
ends FAILED with the error, on SQLite and PostgreSQL, instead of staying RUNNING and crashing
again in every process that resumes it."""

from __future__ import annotations

import pytest

from hub.flow.loader import load_text
from hub.store.store import Store
from hub.testing import make_engine

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


FLOW = """
id: crash
tasks:
  - {id: make, type: python, function: "tests.helpers:unstorable", kwargs: {kind: KIND}}
  - {id: say, type: log, message: "{{ outputs.make.text }}"}
"""


@pytest.mark.parametrize("kind", ["surrogate", "nul"])
async def test_an_engine_crash_ends_the_execution_failed(store: Store, kind: str) -> None:
    if kind == "nul" and store.is_sqlite:
        pytest.skip("SQLite stores a NUL character")
    engine = make_engine(store)
    row = await engine.execute(load_text(FLOW.replace("KIND", kind)))
    assert row["state"] == "FAILED"
    assert row["error"]["type"] == "EngineError" and row["error"]["retryable"] is False
    assert row["error"]["message"].startswith("the engine failed on this execution: ")
    stored = store.get_execution(row["id"])
    assert stored["state"] == "FAILED" and stored["owner"] is None and stored["ended_at"] is not None
    # a process starting later does not pick it up again
    assert row["id"] not in await make_engine(store).resume_interrupted(run_now=False)
