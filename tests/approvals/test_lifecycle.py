"""The gate over time: timeout with each on_timeout, reminders and escalation on schedule (fake
clock), and a restart of the server while a gate is pending."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub import approvals
from hub.api.app import create_app
from hub.api.context import ApiSettings
from hub.engine.clock import FakeClock
from hub.engine.runner import Engine
from hub.flow.loader import load_text
from hub.store.api_store import ApiStore
from hub.store.store import Store
from hub.testing import make_engine, run_flow_async
from tests.approvals.conftest import bearer, emails, link_in, service, wait_state
from tests.fakes.slack_api import FakeSlack

TIMED = """\
id: timed
namespace: ops
tasks:
  - id: review
    type: approval
    message: Deploy to production?
    approvers: [ana@example.com]
    timeout: 1h
    on_timeout: {{ON_TIMEOUT}}
    form: {window: {type: string, default: tonight}}
  - {id: after, type: set, values: {d: "{{ outputs.review.decision }}", t: "{{ outputs.review.timed_out }}",
                                    w: "{{ outputs.review.form.window }}"}}
outputs: {decision: "{{ outputs.after.d }}", timed_out: "{{ outputs.after.t }}", window: "{{ outputs.after.w }}"}
"""


@pytest.mark.anyio
@pytest.mark.parametrize(("on_timeout", "state", "decision"), [
    ("approve", "SUCCESS", "approved"), ("reject", "SUCCESS", "timed_out"), ("fail", "FAILED", None),
])
async def test_timeout_applies_on_timeout(
    engine: Engine, clock: FakeClock, on_timeout: str, state: str, decision: str | None
) -> None:
    result = await run_flow_async(TIMED.replace("{{ON_TIMEOUT}}", on_timeout), engine=engine, drain=False)
    assert result.state == "PAUSED"
    execution = engine.store.get_execution(result.id)
    assert execution["resume_at"] == pytest.approx(clock.now + 3600)
    clock.now += 1800
    assert await engine.resume_interrupted() == []  # nothing due yet
    clock.now += 1801
    assert await engine.resume_interrupted() == [result.id]
    done = engine.store.get_execution(result.id)
    assert done["state"] == state
    gate = service(engine).gates(state=None)[0]
    if decision is None:
        assert gate["state"] == "timed_out"
        assert "timed out: no decision within 1h00m" in done["error"]["message"]
    else:
        assert done["outputs"] == {"decision": decision, "timed_out": True, "window": "tonight"}
        assert gate["decided_by"]["channel"] == "timeout"
    assert [a["action"] for a in service(engine).audit(gate["id"])][0] in ("timed_out", "approved")
    await engine.queue.close()  # type: ignore[attr-defined]


ESCALATING = """\
id: escalating
namespace: finance
tasks:
  - id: review
    type: approval
    message: Pay invoice 42?
    channels: [{email: ana@example.com}, {slack: "#review"}]
    approvers: [ana@example.com]
    timeout: 1d
    remind_every: 1h
    escalate_after: 150m
    escalation:
      channels: [{email: boss@example.com}, {slack: "#management"}]
      approvers: [boss@example.com]
outputs: {by: "{{ outputs.review.decided_by.who }}"}
"""


@pytest.mark.anyio
async def test_reminders_and_escalation_on_schedule(engine: Engine, clock: FakeClock, slack: FakeSlack) -> None:
    start = clock.now
    result = await run_flow_async(ESCALATING, engine=engine, drain=False)
    gate = service(engine).gates()[0]

    def sent() -> list[tuple[str, str]]:
        return [(m["purpose"], m["target"]) for m in service(engine).messages(gate["id"]) if not m["error"]]

    assert sent() == [("request", "ana@example.com"), ("request", "#review")]
    assert engine.store.get_execution(result.id)["resume_at"] == pytest.approx(start + 3600)

    clock.now = start + 3600
    await engine.resume_interrupted()
    assert sent()[2:] == [("reminder-1", "ana@example.com"), ("reminder-1", "#review")]
    reminder = slack.posted("chat.postMessage")[-1]
    assert reminder["thread_ts"] and "still waiting" in reminder["text"]  # in the request's thread
    assert engine.store.get_execution(result.id)["resume_at"] == pytest.approx(start + 7200)

    clock.now = start + 7200
    await engine.resume_interrupted()
    assert engine.store.get_execution(result.id)["resume_at"] == pytest.approx(start + 9000)  # the escalation
    assert [m for m in emails(engine) if m["recipients"] == ["boss@example.com"]] == []

    clock.now = start + 9000
    await engine.resume_interrupted()
    assert ("escalation", "boss@example.com") in sent() and ("escalation", "#management") in sent()
    [boss_mail] = [m for m in emails(engine) if m["recipients"] == ["boss@example.com"]]
    assert boss_mail["subject"].startswith("Escalated:")
    assert [c["channel"] for c in slack.posted("chat.postMessage")][-1] == "#management"
    assert engine.store.get_execution(result.id)["resume_at"] == pytest.approx(start + 10800)

    # the boss may decide now; the approval resumes the execution
    link = link_in(boss_mail)
    claims, current, _ = service(engine).read_link(link.rsplit("/", 1)[1])
    decided = service(engine).decide(current["id"], [claims.identity], "email", "approve", link_id=claims.link_id)
    assert decided.decided
    await service(engine).after_decision(decided.gate)
    await engine.queue.drain(include_timers=False)  # type: ignore[attr-defined]
    done = engine.store.get_execution(result.id)
    assert done["state"] == "SUCCESS" and done["outputs"] == {"by": "boss@example.com"}
    updates = slack.posted("chat.update")
    assert {u["channel"] for u in updates} == {"C0REVIEW", "C0MGMT"}  # both requests show the outcome
    await engine.queue.close()  # type: ignore[attr-defined]


SIMPLE = """\
id: simple
namespace: demo
tasks:
  - {id: review, type: approval, message: Go?, approvers: [key:ana]}
  - {id: after, type: set, values: {d: "{{ outputs.review.decision }}"}}
outputs: {decision: "{{ outputs.after.d }}"}
"""


def test_server_restart_while_paused_loses_nothing(store: Store, tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = make_engine(store, home=home)
    approvals.install(first)
    execution = asyncio.run(first.execute(load_text(SIMPLE)))
    assert execution["state"] == "PAUSED"
    gate_id = service(first).gates()[0]["id"]
    key = ApiStore(store).create_key("ana", ["approve"])[1]
    del first  # the server goes away

    second = make_engine(store, home=home)  # a new process on the same database
    app = create_app(second, settings=ApiSettings(), auth="auto")
    with TestClient(app, raise_server_exceptions=False) as client:
        inbox = client.get("/v1/approvals", headers=bearer(key)).json()["items"]
        assert [a["id"] for a in inbox] == [gate_id]
        answer = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(key), json={"decision": "approve"})
        assert answer.status_code == 200, answer.text
        done = wait_state(second, execution["id"], "SUCCESS")
        assert done["outputs"] == {"decision": "approved"}


RACE = """\
id: race
namespace: demo
tasks:
  - {id: review, type: approval, message: Go?, approvers: [a@example.com, b@example.com, c@example.com, d@example.com]}
"""


@pytest.mark.anyio
async def test_concurrent_decisions_give_one_outcome(engine: Engine) -> None:
    await run_flow_async(RACE, engine=engine, drain=False)
    gate_id = service(engine).gates()[0]["id"]
    people = ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]

    def vote(who: str) -> str:
        try:
            result = service(engine).decide(gate_id, [who], "api", "approve" if who < "c" else "reject")
            return "decided" if result.decided else ("duplicate" if result.duplicate else "counted")
        except Exception as exc:
            return getattr(exc, "reason", repr(exc))

    outcomes = await asyncio.gather(*(asyncio.to_thread(vote, p) for p in people * 2))
    assert outcomes.count("decided") == 1
    assert set(outcomes) - {"decided"} <= {"already_decided", "duplicate"}  # the winner's twin is a duplicate
    gate = service(engine).get(gate_id)
    [winner] = service(engine).votes(gate_id)
    assert gate["decided_by"]["identity"] == winner["identity"]
    assert gate["decision"] == ("approved" if winner["vote"] == "approve" else "rejected")
    await engine.queue.close()  # type: ignore[attr-defined]
