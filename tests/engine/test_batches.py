"""Group commit in the engine: claims and ends of many executions gathered into one call
(:mod:`hub.engine.batches`), and what a batch killed before its commit leaves behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hub.engine.batches import Batched, in_thread
from hub.flow.loader import load_text
from hub.store.store import Store
from hub.testing import make_engine

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.anyio

FLOW = """
id: pair
namespace: test
inputs: [{id: n, type: int}]
tasks:
  - {id: first, type: set, values: {n: "{{ inputs.n }}"}}
  - {id: second, type: set, values: {double: "{{ outputs.first.n * 2 }}"}}
outputs: {double: "{{ outputs.second.double }}"}
"""


# -- Batched ------------------------------------------------------------------------------------


async def test_calls_made_while_a_batch_is_written_go_together_in_the_next() -> None:
    release = threading.Event()
    seen: list[list[int]] = []

    def many(items: list[int]) -> list[int]:
        seen.append(items)
        if len(seen) == 1:
            release.wait(10)  # the first batch is slow: the others gather meanwhile
        return [item * 10 for item in items]

    batched: Batched[int, int] = Batched(in_thread(many), key=lambda item: item)
    first = asyncio.ensure_future(batched(1))
    await asyncio.sleep(0.05)  # (the first batch is in its thread now)
    rest = [asyncio.ensure_future(batched(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    release.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40]
    assert seen == [[1], [2, 3, 4]]
    assert batched.batches == 2


async def test_an_item_s_error_reaches_its_caller_alone() -> None:
    def many(items: list[int]) -> list[object]:
        return [ValueError(f"bad {item}") if item == 2 else item for item in items]

    batched: Batched[int, int] = Batched(in_thread(many), key=lambda item: item)
    results = await asyncio.gather(*(batched(n) for n in (1, 2, 3)), return_exceptions=True)
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad 2"


async def test_a_batch_that_fails_reaches_every_caller_and_the_next_batch_still_runs() -> None:
    calls: list[list[int]] = []

    def many(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            raise ConnectionError("database away")
        return items

    batched: Batched[int, int] = Batched(in_thread(many), key=lambda item: item)
    results = await asyncio.gather(*(batched(n) for n in (1, 2)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await batched(3) == 3


async def test_items_with_one_key_never_share_a_batch() -> None:
    seen: list[list[tuple[str, int]]] = []

    def many(items: list[tuple[str, int]]) -> list[int]:
        seen.append(items)
        return [n for _, n in items]

    batched: Batched[tuple[str, int], int] = Batched(in_thread(many), key=lambda item: item[0], max_batch=3)
    calls = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("d", 5)]
    assert await asyncio.gather(*(batched(c) for c in calls)) == [1, 2, 3, 4, 5]
    assert seen == [[("a", 1), ("b", 2), ("c", 4)], [("a", 3), ("d", 5)]]  # in order, at most 3


async def test_an_async_many_without_a_key_takes_the_items_in_order_up_to_max_batch() -> None:
    seen: list[list[int]] = []
    gate = asyncio.Event()

    async def many(items: list[int]) -> list[int]:  # on the loop (the starts: insert, then submit)
        seen.append(items)
        if len(seen) == 1:
            await gate.wait()
        return [item * 10 for item in items]

    batched: Batched[int, int] = Batched(many, max_batch=2)
    first = asyncio.ensure_future(batched(1))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(batched(n)) for n in (1, 2, 3)]  # no key: a repeated item may share a batch
    await asyncio.sleep(0)
    assert not batched.idle
    gate.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [10, 20, 30]
    assert seen == [[1], [1, 2], [3]]
    assert batched.idle and batched.batches == 3


# -- the engine on a server database ------------------------------------------------------------


async def test_executions_running_together_share_their_claims_and_their_ends(store: Store) -> None:
    if store.is_sqlite:
        pytest.skip("SQLite writes each claim and end inline (commits take microseconds)")
    engine = make_engine(store)
    flow = load_text(FLOW)
    ids = [await engine.start(flow, {"n": n}, enqueue=False) for n in range(20)]
    engine._hints.clear()  # claimed as a worker would (it has no hint: it did not start them)
    rows = await asyncio.gather(*(engine.run(i) for i in ids))
    assert [r["state"] for r in rows] == ["SUCCESS"] * 20
    assert [r["outputs"] for r in rows] == [{"double": 2 * n} for n in range(20)]
    for n, execution_id in enumerate(ids):
        stored = store.get_execution(execution_id)
        assert (stored["state"], stored["outputs"], stored["owner"]) == ("SUCCESS", {"double": 2 * n}, None)
        assert [(s["path"], s["state"]) for s in store.step_runs(execution_id)] == [
            ("first", "SUCCESS"), ("second", "SUCCESS"),
        ]
    assert engine.claims.batches < 20 and engine.ends.batches < 20


KILLED_IN_A_BATCH = """
import asyncio, os, signal, sys
import hub.store.steps as steps
from hub.flow.loader import load_text
from hub.store.store import Store
from hub.testing import make_engine

url, flow_text, acknowledged = sys.argv[1], sys.argv[2], sys.argv[3]
store = Store.open(url)
engine = make_engine(store)
flow = load_text(flow_text)
real = steps.end_executions_sql
armed = False

def dying(*args):
    if armed:  # a batch of ends of the second wave: its step runs are inserted, nothing is committed yet
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args)

steps.end_executions_sql = dying

async def wave(numbers):
    ids = [await engine.start(flow, {"n": n}, enqueue=False) for n in numbers]
    engine._hints.clear()

    async def one(execution_id):
        row = await engine.run(execution_id)
        with open(acknowledged, "a") as out:  # the end was acknowledged to its caller
            out.write(execution_id + " " + row["state"] + "\\n")

    await asyncio.gather(*(one(i) for i in ids))

async def main():
    global armed
    await wave(range(10))
    armed = True
    await wave(range(10, 30))

asyncio.run(main())
"""


def test_a_batch_of_ends_killed_before_its_commit_loses_nothing_acknowledged(store: Store, tmp_path: Path) -> None:
    if store.is_sqlite:
        pytest.skip("SQLite writes each end inline")
    url = store.engine.url.render_as_string(hide_password=False)
    acknowledged = tmp_path / "acknowledged.txt"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_IN_A_BATCH, url, FLOW, str(acknowledged)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "HUB_HOME": str(tmp_path / "home")},
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    acked = dict(line.split() for line in acknowledged.read_text().splitlines())
    assert len(acked) >= 10 and set(acked.values()) == {"SUCCESS"}  # the first wave, whole
    executions = store.list_executions(flow_id="pair", limit=100)
    assert len(executions) == 30
    left = []
    for execution in executions:
        steps = [s["path"] for s in store.step_runs(execution["id"])]
        # in the killed batch, or not claimed yet when the process died (a loaded machine): nothing
        # of it committed
        if execution["state"] in ("RUNNING", "QUEUED"):
            assert execution["id"] not in acked and steps == []
            left.append(execution["id"])
        else:  # acknowledged ends were committed (and committed ones are whole)
            assert (execution["state"], steps) == ("SUCCESS", ["first", "second"])
    assert left and all(i not in left for i in acked)

    engine = make_engine(store)
    resumed = asyncio.run(engine.resume_interrupted())
    assert sorted(resumed) == sorted(left)
    for execution in store.list_executions(flow_id="pair", limit=100):
        assert execution["state"] == "SUCCESS"
        assert execution["outputs"] == {"double": 2 * execution["inputs"]["n"]}
        assert [s["path"] for s in store.step_runs(execution["id"])] == ["first", "second"]  # once each
