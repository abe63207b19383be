"""A process killed with SIGKILL mid-flow loses nothing; restart resumes from the failed step."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.flow.loader import load_text
from hub.store.store import Store
from hub.testing import make_engine, run_flow

ROOT = Path(__file__).resolve().parents[2]

FLOW = """
id: durable
namespace: test
inputs: [{{id: dir, type: string}}]
tasks:
  - {{id: first, type: python, function: "tests.helpers:record", kwargs: {{marker_dir: "{{{{ inputs.dir }}}}", name: first}}}}
  - id: each
    type: for_each
    items: [1, 2]
    tasks:
      - {{id: item_step, type: python, function: "tests.helpers:record", kwargs: {{marker_dir: "{{{{ inputs.dir }}}}", name: "item{{{{ item }}}}"}}}}
  - {{id: slow, type: python, function: "tests.helpers:record", kwargs: {{marker_dir: "{{{{ inputs.dir }}}}", name: slow, sleep: 60}}}}
  - {{id: last, type: python, function: "tests.helpers:record", kwargs: {{marker_dir: "{{{{ inputs.dir }}}}", name: last}}}}
outputs:
  first: "{{{{ outputs.first.name }}}}"
  last: "{{{{ outputs.last.name }}}}"
"""


def _env(home: Path, url: str) -> dict[str, str]:
    env = dict(os.environ)
    # the flow calls tests.helpers, which is not under the process's directory (tmp_path): allow it
    env.update(HUB_HOME=str(home), HUB_DATABASE_URL=url, PYTHONPATH=str(ROOT), HUB_PYTHON_MODULES="tests")
    return env


def _hub(*args: str) -> list[str]:
    return [sys.executable, "-m", "hub.cli", *args]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_sigkill_mid_flow_then_resume_runs_no_committed_step_twice(store: Store, tmp_path: Path) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    flow_file = tmp_path / "durable.yaml"
    flow_file.write_text(FLOW.format())
    markers = tmp_path / "markers"
    markers.mkdir()
    env = _env(tmp_path / "home", url)
    proc = subprocess.Popen(
        _hub("run", str(flow_file), "-i", f"dir={markers}", "--flows", str(tmp_path / "none")),
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not (markers / "slow").exists() or not _running(store, "slow"):
            # a step's RUNNING row is written once it has run for leaf.START_DELAY: kill after that
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the flow never reached the slow step"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    execution = store.list_executions(flow_id="durable")[0]
    assert execution["state"] == "RUNNING"
    states = {row["path"]: row["state"] for row in store.step_runs(execution["id"])}
    assert states["first"] == "SUCCESS" and states["item_step[1]"] == "SUCCESS" and states["slow"] == "RUNNING"

    resumed = subprocess.run(_hub("resume", "--flows", str(tmp_path / "none")), env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert execution["id"] in resumed.stdout

    done = store.get_execution(execution["id"])
    assert done["state"] == "SUCCESS", done["error"]
    assert done["outputs"] == {"first": "first", "last": "last"}
    # committed steps ran exactly once; the step in flight ran again, with the same idempotency key
    assert len(_lines(markers / "first")) == 1
    assert len(_lines(markers / "item1")) == 1 and len(_lines(markers / "item2")) == 1
    assert len(_lines(markers / "last")) == 1
    slow_runs = _lines(markers / "slow")
    assert len(slow_runs) == 2
    assert slow_runs[0].split()[1] == slow_runs[1].split()[1] == f"{execution['id']}:slow"
    slow_rows = [r for r in store.step_runs(execution["id"]) if r["path"] == "slow"]
    assert [r["state"] for r in slow_rows] == ["FAILED", "SUCCESS"]
    assert slow_rows[0]["error"]["type"] == "Interrupted"


def _running(store: Store, path: str) -> bool:
    return any(row["path"] == path and row["state"] == "RUNNING"
               for execution in store.list_executions(flow_id="durable") for row in store.step_runs(execution["id"]))


def test_resume_leaves_executions_of_live_processes_alone(sqlite_store: Store) -> None:
    engine = make_engine(sqlite_store)
    flow = load_text("id: a\ntasks:\n  - {id: x, type: log, message: hi}\n")

    async def go() -> list[str]:
        execution_id = await engine.start(flow, enqueue=False)
        engine.store.claim_execution(execution_id, f"{os.uname().nodename}:1:abc", [None])  # pid 1 is alive
        return await engine.resume_interrupted()

    assert asyncio.run(go()) == []


def test_restart_reruns_from_the_failed_step_keeping_earlier_outputs(store: Store, tmp_path: Path) -> None:
    flag = tmp_path / "broken"
    flag.touch()
    markers = tmp_path / "m"
    markers.mkdir()
    engine = make_engine(store)
    text = f"""
id: restartable
tasks:
  - {{id: a, type: python, function: "tests.helpers:record", kwargs: {{marker_dir: "{markers}", name: a}}}}
  - {{id: b, type: python, function: "tests.helpers:fail_once_then_ok", kwargs: {{flag_file: "{flag}"}}}}
  - {{id: c, type: set, values: {{from_a: "{{{{ outputs.a.name }}}}", from_b: "{{{{ outputs.b }}}}"}}}}
errors:
  - {{id: on_error, type: log, message: "{{{{ error.message }}}}"}}
outputs: {{c: "{{{{ outputs.c }}}}"}}
"""
    first = run_flow(text, engine=engine)
    assert first.state == "FAILED" and first.error["task_id"] == "b"
    flag.unlink()
    again = asyncio.run(engine.restart(first.id, run_now=True))
    assert again["id"] == first.id and again["state"] == "SUCCESS", again["error"]
    assert again["outputs"] == {"c": {"from_a": "a", "from_b": "ok"}}
    assert len(_lines(markers / "a")) == 1
    rows = store.step_runs(first.id)
    assert [(r["attempt"], r["state"]) for r in rows if r["path"] == "b"] == [(1, "FAILED"), (2, "SUCCESS")]
    assert len([r for r in rows if r["path"] == "on_error"]) == 1  # handler ran for the failed run only


def test_restart_refuses_a_successful_execution(sqlite_store: Store) -> None:
    from hub.errors import HubError

    engine = make_engine(sqlite_store)
    ok = run_flow("id: fine\ntasks:\n  - {id: a, type: log, message: hi}\n", engine=engine)
    with pytest.raises(HubError, match="only FAILED, KILLED or CANCELLED"):
        asyncio.run(engine.restart(ok.id))


def test_kill_cancels_a_running_execution(sqlite_store: Store) -> None:
    engine = make_engine(sqlite_store)
    flow = load_text("id: k\ntasks:\n  - {id: nap, type: python, function: 'tests.helpers:slow', kwargs: {seconds: 30}}\n  - {id: after, type: log, message: never}\n")

    async def go() -> dict:
        execution_id = await engine.start(flow)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if any(r["path"] == "nap" for r in engine.store.step_runs(execution_id)):
                break
        return await engine.kill(execution_id)

    killed = asyncio.run(go())
    assert killed["state"] == "KILLED"
    rows = engine.store.step_runs(killed["id"])
    assert [(r["path"], r["state"]) for r in rows] == [("nap", "KILLED")]


def test_kill_ends_a_paused_execution_and_its_open_steps(sqlite_store: Store) -> None:
    from hub.engine.clock import FakeClock

    engine = make_engine(sqlite_store, clock=FakeClock())
    paused = run_flow(
        "id: p\ntasks:\n  - {id: first, type: set, values: {v: 1}}\n  - {id: later, type: wait, duration: 1h}\n",
        engine=engine, drain=False,
    )
    assert paused.state == "PAUSED"
    killed = asyncio.run(engine.kill(paused.id))
    assert killed["state"] == "KILLED"
    rows = engine.store.step_runs(paused.id)
    assert [(r["path"], r["state"]) for r in rows] == [("first", "SUCCESS"), ("later", "KILLED")]
    assert all(r["ended_at"] is not None for r in rows)


def test_a_kill_asked_by_another_process_stops_the_execution_at_the_next_heartbeat(store: Store) -> None:
    from hub.engine.runner import Engine

    runner = make_engine(store)
    elsewhere = Engine(store, owner="elsewhere:1:abcdef")  # another process on the same database
    flow = load_text("id: k2\ntasks:\n  - {id: nap, type: python, function: 'tests.helpers:slow', kwargs: {seconds: 30}}\n")

    async def go() -> tuple[dict, dict]:
        execution_id = await runner.start(flow)
        beat = asyncio.create_task(runner.heartbeat_loop(interval=0.01))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if any(r["path"] == "nap" for r in runner.store.step_runs(execution_id)):
                break
        marked = await elsewhere.kill(execution_id)
        await runner.queue.drain()
        beat.cancel()
        return marked, runner.store.get_execution(execution_id)

    marked, ended = asyncio.run(go())
    assert marked["state"] == "KILLING"
    assert ended["state"] == "KILLED"
    assert [r["state"] for r in runner.store.step_runs(ended["id"])] == ["KILLED"]
