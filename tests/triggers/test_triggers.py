"""Schedule (catchup, backfill, one leader), redis_stream (ack after create, redelivery), file
and flow triggers, disabled triggers and trigger state."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.engine.runner import Engine
from hub.flow.loader import load_text
from hub.testing import make_engine
from hub.triggers import files, schedule
from hub.triggers.base import enabled_triggers
from hub.triggers.flows import FlowTriggers
from hub.triggers.service import TriggerService
from hub.triggers.state import set_trigger_disabled, trigger_states
from hub.triggers.streams import StreamConsumer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def engine(store) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    yield make_engine(store)


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def nightly(catchup: str, tz: str = "UTC") -> str:
    return f"""
id: nightly_{catchup}
namespace: tr
inputs: [{{id: day, type: string}}]
triggers:
  - {{id: nightly, type: schedule, cron: "0 2 * * *", timezone: {tz}, catchup: {catchup},
     inputs: {{day: "{{{{ trigger.date[:10] }}}}"}}}}
tasks:
  - {{id: echo, type: set, values: {{day: "{{{{ inputs.day }}}}"}}}}
"""


def executions(engine: Engine, flow_id: str) -> list[dict]:
    rows = engine.store.list_executions(namespace="tr", flow_id=flow_id, limit=1000)
    return sorted(rows, key=lambda r: r["trigger"].get("scheduled_at", 0) if r["trigger"] else 0)


@pytest.mark.parametrize(("catchup", "days"), [
    ("all", ["2024-05-02", "2024-05-03", "2024-05-04"]),
    ("once", ["2024-05-04"]),
    ("none", []),
])
async def test_missed_schedules_catch_up_as_configured(engine: Engine, catchup: str, days: list[str]) -> None:
    engine.deploy(load_text(nightly(catchup)))
    assert await schedule.tick(engine, ts("2024-05-01T12:00:00")) == []  # first sight: starts from now
    state = trigger_states(engine.store, "tr")[0]
    assert state["next_fire_at"] == ts("2024-05-02T02:00:00")

    # the scheduler was down for three nights
    created = await schedule.tick(engine, ts("2024-05-04T09:00:00"))
    rows = executions(engine, f"nightly_{catchup}")
    assert [r["inputs"]["day"] for r in rows] == days
    assert len(created) == len(days)
    state = trigger_states(engine.store, "tr")[0]
    assert state["next_fire_at"] == ts("2024-05-05T02:00:00")
    assert state["fire_count"] == len(days)

    # on time: every mode fires
    await schedule.tick(engine, ts("2024-05-05T02:00:01"))
    assert executions(engine, f"nightly_{catchup}")[-1]["inputs"]["day"] == "2024-05-05"
    assert await schedule.tick(engine, ts("2024-05-05T02:00:02")) == []  # never twice


async def test_schedule_timezone(engine: Engine) -> None:
    engine.deploy(load_text(nightly("all", "Europe/Berlin")))
    await schedule.tick(engine, ts("2024-05-01T12:00:00"))
    await schedule.tick(engine, ts("2024-05-02T00:00:30"))  # 02:00 Berlin (CEST) is 00:00 UTC
    [row] = executions(engine, "nightly_all")
    assert row["trigger"]["date"] == "2024-05-02T02:00:00+02:00"


async def test_backfill_over_a_date_range_skips_times_that_ran(engine: Engine) -> None:
    engine.deploy(load_text(nightly("none")))
    first = await schedule.backfill(engine, "tr.nightly_none", datetime(2024, 3, 1), datetime(2024, 3, 3, 23))
    assert [r["date"] for r in first] == [f"2024-03-0{d}T02:00:00+00:00" for d in (1, 2, 3)]
    assert all(r["created"] for r in first)
    again = await schedule.backfill(engine, "tr.nightly_none", datetime(2024, 3, 3), datetime(2024, 3, 4, 3))
    assert [(r["date"][:10], r["created"]) for r in again] == [("2024-03-03", False), ("2024-03-04", True)]
    rows = executions(engine, "nightly_none")
    assert len(rows) == 4 and all(r["trigger"]["backfill"] for r in rows)
    await engine.queue.drain()  # type: ignore[attr-defined]
    assert {engine.store.get_execution(r["id"])["state"] for r in rows} == {"SUCCESS"}


async def test_disabled_triggers_do_not_fire(engine: Engine) -> None:
    engine.deploy(load_text(nightly("all")))
    flow = nightly("once").replace("catchup: once", "catchup: once, disabled: true")
    engine.deploy(load_text(flow))
    assert [b.name for b in enabled_triggers(engine)] == ["tr.nightly_all/nightly"]
    set_trigger_disabled(engine.store, "tr", "nightly_all", "nightly", True)
    assert enabled_triggers(engine) == []
    await schedule.tick(engine, ts("2024-05-01T12:00:00"))
    assert await schedule.tick(engine, ts("2024-05-04T12:00:00")) == []
    state = set_trigger_disabled(engine.store, "tr", "nightly_all", "nightly", False)
    assert state["disabled"] is False
    assert len(enabled_triggers(engine)) == 1


@pytest.mark.postgres
async def test_two_schedulers_never_fire_twice(engine: Engine, redis_url: str, tmp_path: Path) -> None:
    engine.deploy(load_text("""
id: every_second
namespace: tr
triggers: [{id: tick, type: schedule, cron: "* * * * * *", catchup: all}]
tasks: [{id: noop, type: set, values: {}}]
"""))
    key = f"hubtest:{uuid.uuid4().hex[:8]}:leader"
    settings = engine.settings.model_copy(update={"redis_url": redis_url})
    other = make_engine(engine.store, home=tmp_path / "other")
    first = TriggerService(engine, settings, tick=0.05, leader_key=key)
    second = TriggerService(other, settings, tick=0.05, leader_key=key)
    await first.start()
    await second.start()
    try:
        deadline = time.monotonic() + 10
        while len(executions(engine, "every_second")) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await first.stop()
        await second.stop()
    rows = executions(engine, "every_second")
    assert len(rows) >= 3
    dates = [r["trigger"]["date"] for r in rows]
    assert len(dates) == len(set(dates))  # one execution per cron time
    assert sorted([first.fired, second.fired])[0] == 0  # only the leader fired
    assert first.fired + second.fired == len(rows)


@pytest.mark.postgres
async def test_stream_message_is_acked_after_its_execution_exists(engine: Engine, redis_url: str) -> None:
    import redis.asyncio as aioredis

    stream = f"hubtest:{uuid.uuid4().hex[:8]}:leads"
    engine.deploy(load_text(f"""
id: on_lead
namespace: tr
inputs: [{{id: email, type: string}}]
triggers:
  - {{id: leads, type: redis_stream, stream: "{stream}", group: hub, inputs: {{email: "{{{{ trigger.fields.email }}}}"}}}}
tasks: [{{id: echo, type: set, values: {{email: "{{{{ inputs.email }}}}"}}}}]
"""))
    client = aioredis.Redis.from_url(redis_url)
    [bound] = enabled_triggers(engine, {"redis_stream"})
    try:
        consumer = StreamConsumer(engine, bound, redis_url, consumer="a", block=0.05, claim_idle=0.0)
        await consumer.setup()
        await client.xadd(stream, {"email": "ana@example.com"})
        await client.xadd(stream, {"nope": "x"})  # no email: the inputs cannot render

        # a consumer that dies after reading, before creating anything: nothing is acked
        dead = await client.xreadgroup("hub", "dead", {stream: ">"}, count=1)
        assert len(dead[0][1]) == 1
        assert (await client.xpending(stream, "hub"))["pending"] == 1
        assert executions(engine, "on_lead") == []

        await consumer.read_once()  # the second message: invalid -> dead letter, acked
        assert await consumer.claim_stale() == 1  # the first one, taken over from "dead"
        rows = executions(engine, "on_lead")
        assert [r["inputs"] for r in rows] == [{"email": "ana@example.com"}]
        assert rows[0]["trigger"]["fields"] == {"email": "ana@example.com"}
        assert (await client.xpending(stream, "hub"))["pending"] == 0
        dead_letters = await client.xrange(stream + ":dead")
        assert len(dead_letters) == 1 and b"_error" in dead_letters[0][1]

        # the same message delivered again (an ack lost): no second execution
        message_id = rows[0]["trigger"]["message_id"]
        await consumer.handle(message_id, {b"email": b"ana@example.com"})
        assert len(executions(engine, "on_lead")) == 1
        await consumer.close()
    finally:
        await client.delete(stream, stream + ":dead")
        await client.aclose()


async def test_file_trigger_one_execution_per_file(engine: Engine, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    engine.deploy(load_text(f"""
id: on_file
namespace: tr
inputs: [{{id: name, type: string}}]
triggers: [{{id: drop, type: file, path: "{inbox}", pattern: "*.csv", inputs: {{name: "{{{{ trigger.name }}}}"}}}}]
tasks:
  - {{id: check, type: python, function: "tests.workers.steps:fail_on", kwargs: {{value: "{{{{ 1 if 'bad' in inputs.name else 0 }}}}", bad: 1, unless: "/nonexistent"}}}}
"""))
    (inbox / "good.csv").write_text("a,b\n")
    (inbox / "bad.csv").write_text("x\n")
    (inbox / "notes.txt").write_text("ignored")
    old = time.time() - 5
    for name in ("good.csv", "bad.csv"):
        os.utime(inbox / name, (old, old))
    [bound] = enabled_triggers(engine, {"file"})
    started = await files.scan(engine, bound)
    assert len(started) == 2
    # taken out of the inbox (a fast-failing run may already have ended and had its file moved on)
    taken = [p.name for folder in ("processing", "processed", "failed") if (inbox / folder).is_dir()
             for p in (inbox / folder).iterdir()]
    assert sorted(taken) == ["bad.csv", "good.csv"]
    assert not (inbox / "good.csv").exists() and not (inbox / "bad.csv").exists()
    assert await files.scan(engine, bound) == []  # moved: not seen again
    await engine.queue.drain()  # type: ignore[attr-defined]
    await files.scan(engine, bound)
    assert [p.name for p in (inbox / "processed").iterdir()] == ["good.csv"]
    assert [p.name for p in (inbox / "failed").iterdir()] == ["bad.csv"]
    assert (inbox / "notes.txt").exists()
    rows = executions(engine, "on_file")
    assert sorted(r["inputs"]["name"] for r in rows) == ["bad.csv", "good.csv"]
    assert trigger_states(engine.store, "tr", "on_file")[0]["fire_count"] == 2


async def test_file_left_in_processing_by_an_interrupted_scan_starts_on_the_next_one(
    engine: Engine, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "processing").mkdir(parents=True)
    engine.deploy(load_text(f"""
id: on_drop
namespace: tr
triggers: [{{id: drop, type: file, path: "{inbox}", pattern: "*.csv"}}]
tasks: [{{id: noop, type: set, values: {{}}}}]
"""))
    (inbox / "processing" / "moved.csv").write_text("a\n")  # moved, then the process stopped
    [bound] = enabled_triggers(engine, {"file"})
    started = await files.scan(engine, bound)
    assert len(started) == 1
    assert await files.scan(engine, bound) == []  # started once only
    await engine.queue.drain()  # type: ignore[attr-defined]
    await files.scan(engine, bound)
    assert [p.name for p in (inbox / "processed").iterdir()] == ["moved.csv"]
    assert [r["trigger"]["name"] for r in executions(engine, "on_drop")] == ["moved.csv"]


async def test_one_leader_round_fires_schedules_and_scans_folders(engine: Engine, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    engine.deploy(load_text(nightly("all")))
    engine.deploy(load_text(f"""
id: on_drop
namespace: tr
triggers: [{{id: drop, type: file, path: "{inbox}", pattern: "*.csv", interval: 60s}}]
tasks: [{{id: noop, type: set, values: {{}}}}]
"""))
    service = TriggerService(engine)  # no Redis: this process leads
    assert await service.lead_once(ts("2024-05-01T12:00:00")) == []  # the schedule's first sight
    (inbox / "a.csv").write_text("a\n")
    os.utime(inbox / "a.csv", (time.time() - 5, time.time() - 5))
    created = await service.lead_once(ts("2024-05-02T02:00:01"))
    assert [r["inputs"]["day"] for r in executions(engine, "nightly_all")] == ["2024-05-02"]
    assert [r["trigger"]["name"] for r in executions(engine, "on_drop")] == ["a.csv"]
    assert len(created) == service.fired == 2
    (inbox / "b.csv").write_text("b\n")
    os.utime(inbox / "b.csv", (time.time() - 5, time.time() - 5))
    assert await service.lead_once(ts("2024-05-02T02:00:30")) == []  # the folder's interval is 60 s
    assert len(await service.lead_once(ts("2024-05-02T02:01:02"))) == 1


async def test_flow_trigger_on_states_and_condition(engine: Engine) -> None:
    engine.deploy(load_text("""
id: score
namespace: tr
inputs: [{id: value, type: float}]
tasks: [{id: calc, type: set, values: {score: "{{ inputs.value }}"}}]
outputs: {score: "{{ outputs.calc.score }}"}
"""))
    engine.deploy(load_text("""
id: follow_up
namespace: tr
inputs: [{id: score, type: float}]
triggers:
  - {id: after_score, type: flow, flow: tr.score, states: [SUCCESS], condition: "{{ trigger.outputs.score > 0.5 }}",
     inputs: {score: "{{ trigger.outputs.score }}"}}
tasks: [{id: noted, type: set, values: {ok: true}}]
"""))
    listener = FlowTriggers(engine).attach()
    low = await engine.execute("tr.score", {"value": 0.2})
    high = await engine.execute("tr.score", {"value": 0.9})
    await listener.drain()
    await engine.queue.drain()  # type: ignore[attr-defined]
    rows = engine.store.list_executions(namespace="tr", flow_id="follow_up")
    assert [(r["inputs"], r["trigger"]["execution_id"], r["state"]) for r in rows] == [
        ({"score": 0.9}, high["id"], "SUCCESS")
    ]
    assert low["id"] != high["id"]
    # the same upstream ending seen again (another process): no second execution
    assert await listener.handle(high["id"]) == [rows[0]["id"]]
    assert len(engine.store.list_executions(namespace="tr", flow_id="follow_up")) == 1
    listener.detach()


async def test_trigger_fields_render_secrets_the_same_way_everywhere(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schedule's inputs and a file trigger's path may call secret(), as a webhook's secret may."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setenv("HUB_SECRET_REPORT_TOKEN", "tok-987")
    monkeypatch.setenv("HUB_SECRET_INBOX", str(inbox))
    engine.deploy(load_text("""
id: secretive
namespace: tr
inputs: [{id: token, type: string, default: none}, {id: name, type: string, default: none}]
triggers:
  - {id: nightly, type: schedule, cron: "0 2 * * *", inputs: {token: "{{ secret('REPORT_TOKEN') }}"}}
  - {id: drop, type: file, path: "{{ secret('INBOX') }}", pattern: "*.csv", inputs: {name: "{{ trigger.name }}"}}
tasks:
  - {id: echo, type: log, message: "{{ inputs.name }}"}
"""))
    await schedule.tick(engine, ts("2024-05-01T12:00:00"))
    [created] = await schedule.tick(engine, ts("2024-05-02T02:00:01"))
    assert engine.store.get_execution(created)["inputs"]["token"] == "tok-987"
    (inbox / "a.csv").write_text("x\n")
    os.utime(inbox / "a.csv", (time.time() - 5, time.time() - 5))
    [bound] = enabled_triggers(engine, {"file"})
    [started] = await files.scan(engine, bound)
    assert engine.store.get_execution(started)["inputs"]["name"] == "a.csv"
    assert (inbox / "processing" / "a.csv").exists()


async def test_a_schedule_that_cannot_start_is_reported_once_and_tries_at_its_next_time(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    engine.deploy(load_text("""
id: unset
namespace: tr
inputs: [{id: token, type: string}]
triggers:
  - {id: nightly, type: schedule, cron: "0 2 * * *", inputs: {token: "{{ secret('NEVER_SET') }}"}}
tasks:
  - {id: echo, type: log, message: "{{ inputs.token }}"}
"""))
    await schedule.tick(engine, ts("2024-05-01T12:00:00"))
    for second in range(1, 6):  # the leader ticks every second
        assert await schedule.tick(engine, ts("2024-05-02T02:00:00") + second) == []
    errors = [r for r in caplog.records if "unset" in r.getMessage()]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "secret 'NEVER_SET' is not set" in errors[0].getMessage()
    [state] = trigger_states(engine.store, "tr", "unset")
    assert "secret 'NEVER_SET' is not set" in state["last_error"]
    assert state["next_fire_at"] == ts("2024-05-03T02:00:00")  # skipped to the next time, not every tick


def test_a_file_trigger_path_is_checked_at_validation() -> None:
    from hub.errors import FlowError

    with pytest.raises(FlowError, match=r"triggers\[0\]\.path: .*inputs"):
        load_text("id: f\ntriggers:\n  - {id: drop, type: file, path: \"{{ inputs.dir }}\"}\n"
                  "tasks:\n  - {id: a, type: log, message: hi}\n")
