"""A pause's writes and the overflow of a run's held-back rows: committed before they are told,
and on a server database made in the store's threads (hub.engine.batches.DB_THREADS), off the
event loop, as every other write of the walk is."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from hub.engine import pauses
from hub.engine.clock import FakeClock
from hub.errors import Paused
from hub.flow.loader import FlowLoader
from hub.store.store import Store
from hub.tasks.registry import builtin_registry
from hub.testing import make_engine, result_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class AskParams(BaseModel):
    question: str


class AskLater:
    """Pauses at once, before its RUNNING row is due (the pause writes it)."""

    type = "test.ask_later"
    Params = AskParams

    async def run(self, ctx: Any, params: AskParams) -> Any:
        raise Paused(f"asked: {params.question}")


FLOW = """
id: pausing
namespace: writes
tasks:
  - {id: nap, type: wait, duration: 2h}
  - {id: ask, type: test.ask_later, question: why}
"""


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _watch(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, calls: list[tuple[str, bool]],
           keep: Callable[..., bool] = lambda *_, **__: True) -> None:
    """Record ``(name, made on the loop)`` for each call of ``owner.name`` that ``keep`` picks."""
    real = getattr(owner, name)

    def watched(*args: Any, **kwargs: Any) -> Any:
        if keep(*args, **kwargs):
            calls.append((name, _on_loop()))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, watched)


async def test_a_pause_is_committed_before_it_is_told_and_off_the_loop_on_a_server(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(store, clock=FakeClock())
    engine.registry = builtin_registry()  # (not the process's registry, which outlives the test)
    engine.registry.add(AskLater)
    engine.catalog.loader = FlowLoader(engine.registry)
    calls: list[tuple[str, bool]] = []
    _watch(monkeypatch, pauses, "pause_step", calls)
    _watch(monkeypatch, pauses, "completed_meanwhile", calls)
    _watch(monkeypatch, store, "update_execution", calls, lambda *_, **values: values.get("state") == "PAUSED")
    _watch(monkeypatch, store, "start_step", calls, lambda *args, **_: args[3] == AskLater.type)
    told: list[tuple[str, str]] = []  # what was committed when a pause was told

    def listen(event: dict[str, Any]) -> None:
        if event.get("state") != "PAUSED":
            return
        if event["event"] == "execution":
            told.append(("execution", store.get_execution(event["execution_id"])["state"]))
        else:
            [row] = [s for s in store.step_runs(event["execution_id"]) if s["path"] == event["path"]]
            told.append((event["path"], row["state"]))

    engine.listeners.append(listen)
    flow = engine.catalog.loader.load_text(FLOW)
    first = await engine.execute(flow)  # the long wait pauses (a control step)
    assert first["state"] == "PAUSED"
    engine.clock.now += 7200  # type: ignore[attr-defined]
    second = await engine.run(first["id"])  # the wait ends; the task pauses (a leaf step)
    assert second["state"] == "PAUSED"
    assert told == [("execution", "PAUSED"), ("ask", "PAUSED"), ("execution", "PAUSED")]
    assert result_of(engine, first["id"]).step("ask")["state"] == "PAUSED"
    assert [name for name, _ in calls] == [
        "pause_step", "update_execution", "completed_meanwhile",
        "start_step", "pause_step", "update_execution", "completed_meanwhile",
    ]
    if not store.is_sqlite:  # (on SQLite every write is made inline: it takes microseconds)
        assert [name for name, on_loop in calls if on_loop] == []
    await engine.queue.close()


MANY = "id: many\nnamespace: writes\ntasks:\n" + "".join(
    f"  - {{id: s{n}, type: set, values: {{n: {n}}}}}\n" for n in range(503)
)


async def test_held_rows_past_the_limit_are_written_off_the_loop_on_a_server(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(store)
    calls: list[tuple[str, bool]] = []
    _watch(monkeypatch, store, "write_batch", calls, lambda steps, *_, **__: len(steps) >= 500)
    done = await engine.execute(engine.catalog.loader.load_text(MANY))
    assert done["state"] == "SUCCESS"
    assert len(calls) == 1  # the 500th held row wrote them; the last three went with the end
    if not store.is_sqlite:
        assert calls == [("write_batch", False)]
    assert len(store.step_runs(done["id"])) == 503
