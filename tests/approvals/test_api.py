"""Approvals through the API: a paused execution holds nothing, a decision resumes it and its
outputs flow downstream; quorum, self-approval, rejection with a reason, the inbox, the audit log."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from hub.engine.runner import Engine
from tests.approvals.conftest import bearer, deploy, gate_of, service, start, wait_state

REFUND = """\
id: refund
namespace: support
inputs:
  - {id: amount, type: float, required: true}
tasks:
  - id: review
    type: approval
    title: Refund request
    message: "Refund {{ inputs.amount }} EUR to the customer?"
    approvers: [key:ana, key:ben, key:starter]
    required: {{REQUIRED}}
    form:
      amount: {type: number, default: "{{ inputs.amount }}", min: 0, max: 500}
      note: {type: text, default: "Sorry for the trouble."}
  - id: pay
    type: set
    values:
      amount: "{{ outputs.review.form.amount }}"
      decision: "{{ outputs.review.decision }}"
      by: "{{ outputs.review.decided_by.who }}"
      comment: "{{ outputs.review.comment }}"
outputs:
  amount: "{{ outputs.pay.amount }}"
  decision: "{{ outputs.pay.decision }}"
  by: "{{ outputs.pay.by }}"
  comment: "{{ outputs.pay.comment }}"
"""


def refund(required: int = 1) -> str:
    return REFUND.replace("{{REQUIRED}}", str(required))


def test_pause_holds_nothing_and_api_decision_resumes(engine: Engine, client: TestClient, keys: dict[str, str]) -> None:
    flow = deploy(engine, refund())
    execution_id = start(client, keys["starter"], flow, {"amount": 120})
    paused = wait_state(engine, execution_id, "PAUSED")
    assert paused["owner"] is None
    # the state is written just before the run returns: give its task a moment to end
    deadline = time.monotonic() + 5
    queue_tasks = engine.queue.tasks.values  # type: ignore[attr-defined]
    while (execution_id in engine._running or not all(t.done() for t in queue_tasks())) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert execution_id not in engine._running
    assert all(t.done() for t in engine.queue.tasks.values())  # type: ignore[attr-defined]

    inbox = client.get("/v1/approvals", headers=bearer(keys["ana"])).json()["items"]
    assert [a["execution_id"] for a in inbox] == [execution_id]
    gate_id = inbox[0]["id"]
    assert inbox[0]["form"]["amount"]["default"] == 120
    assert client.get("/v1/approvals", headers=bearer(keys["reader"])).json()["items"] == []  # not its inbox

    bad = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["ana"]),
                      json={"decision": "approve", "form": {"amount": 900}})
    assert bad.status_code == 422 and bad.json()["code"] == "InvalidForm"
    assert bad.json()["details"] == [{"path": "form.amount", "message": "must be at most 500"}]
    assert engine.store.get_execution(execution_id)["state"] == "PAUSED"

    ok = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["ana"]),
                     json={"decision": "approve", "form": {"amount": 80}, "comment": "partial refund"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["decided"] is True and ok.json()["approval"]["state"] == "approved"
    done = wait_state(engine, execution_id, "SUCCESS")
    assert done["outputs"] == {"amount": 80, "decision": "approved", "by": "key:ana", "comment": "partial refund"}

    again = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["ana"]),
                        json={"decision": "approve", "form": {"amount": 80}})
    assert again.status_code == 200 and again.json()["duplicate"] is True  # a double click changes nothing
    late = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["ben"]), json={"decision": "reject"})
    assert late.status_code == 409 and late.json()["code"] == "AlreadyDecided"
    assert "by key:ana" in late.json()["detail"]

    audit = client.get(f"/v1/approvals/{gate_id}/audit", headers=bearer(keys["reader"])).json()
    outcomes = [(a["actor"], a["action"], a["outcome"], a["reason"]) for a in reversed(audit)]
    assert ("key:ana", "approve", "refused", "invalid_form") in outcomes
    assert ("key:ana", "approve", "accepted", None) in outcomes
    assert ("key:ben", "reject", "refused", "already_decided") in outcomes


def test_self_approval_is_blocked(engine: Engine, client: TestClient, keys: dict[str, str]) -> None:
    flow = deploy(engine, refund())
    execution_id = start(client, keys["starter"], flow, {"amount": 10})
    wait_state(engine, execution_id, "PAUSED")
    assert engine.store.get_execution(execution_id)["trigger"]["started_by"].startswith("key:")
    gate_id = gate_of(engine, execution_id)["id"]
    own = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["starter"]), json={"decision": "approve"})
    assert own.status_code == 403 and own.json()["code"] == "SelfApproval"
    outsider = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["reader"]),
                           json={"decision": "approve"})
    assert outsider.status_code == 403  # the read key lacks the approve scope
    assert engine.store.get_execution(execution_id)["state"] == "PAUSED"
    assert client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["ben"]),
                       json={"decision": "approve"}).status_code == 200
    assert wait_state(engine, execution_id, "SUCCESS")["outputs"]["by"] == "key:ben"


def test_quorum_of_two_distinct_approvers(engine: Engine, client: TestClient, keys: dict[str, str]) -> None:
    flow = deploy(engine, refund(required=2))
    execution_id = start(client, keys["starter"], flow, {"amount": 50})
    wait_state(engine, execution_id, "PAUSED")
    gate_id = gate_of(engine, execution_id)["id"]
    first = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["ana"]), json={"decision": "approve"})
    assert first.json()["decided"] is False and first.json()["approval"]["state"] == "pending"
    twice = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["ana"]), json={"decision": "approve"})
    assert twice.json()["duplicate"] is True and twice.json()["approval"]["state"] == "pending"
    flip = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["ana"]), json={"decision": "reject"})
    assert flip.status_code == 409 and flip.json()["code"] == "AlreadyVoted"
    assert engine.store.get_execution(execution_id)["state"] == "PAUSED"

    second = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["ben"]),
                         json={"decision": "approve", "form": {"amount": 45}})
    assert second.json()["decided"] is False  # ana approved 50, not 45: her approval no longer counts
    third = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["ana"]), json={"decision": "approve"})
    assert third.json()["decided"] is True
    done = wait_state(engine, execution_id, "SUCCESS")
    assert done["outputs"]["amount"] == 45 and done["outputs"]["by"] == "key:ana"
    detail = client.get(f"/v1/approvals/{gate_id}", headers=bearer(keys["reader"])).json()
    assert [(v["voter"], v["vote"], v["revision"]) for v in detail["votes"]] == [
        ("key:ana", "approve", 1), ("key:ben", "approve", 1)]
    step = [s for s in engine.store.step_runs(execution_id) if s["path"] == "review"][-1]
    assert [v["who"] for v in step["output"]["votes"]] == ["key:ana", "key:ben"]


def test_one_rejection_rejects_with_its_reason(engine: Engine, client: TestClient, keys: dict[str, str]) -> None:
    flow = deploy(engine, refund(required=2))
    execution_id = start(client, keys["starter"], flow, {"amount": 50})
    wait_state(engine, execution_id, "PAUSED")
    gate_id = gate_of(engine, execution_id)["id"]
    client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["ana"]), json={"decision": "approve"})
    rejected = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(keys["ben"]),
                           json={"decision": "reject", "comment": "already refunded last week"})
    assert rejected.json()["approval"]["state"] == "rejected"
    done = wait_state(engine, execution_id, "SUCCESS")
    assert done["outputs"]["decision"] == "rejected"
    assert done["outputs"]["comment"] == "already refunded last week"
    assert client.get("/v1/approvals", headers=bearer(keys["ana"])).json()["items"] == []
    decided = client.get("/v1/approvals", params={"state": "rejected", "mine": False},
                         headers=bearer(keys["reader"])).json()["items"]
    assert [a["id"] for a in decided] == [gate_id]


def test_unknown_approval_and_missing_key(engine: Engine, client: TestClient, keys: dict[str, str]) -> None:
    assert client.get("/v1/approvals/nope", headers=bearer(keys["reader"])).status_code == 404
    assert client.get("/v1/approvals").status_code == 401
    assert client.post("/v1/approvals/nope/decision", json={"decision": "approve"}).status_code == 401


def test_the_inbox_pages_through_the_callers_own_approvals(
    engine: Engine, client: TestClient, keys: dict[str, str]
) -> None:
    for name in ("ana", "ben"):
        flow = deploy(engine, f"id: for_{name}\ntasks:\n  - {{id: gate, type: approval, message: ok?, approvers: [key:{name}]}}\n")
        wait_state(engine, start(client, keys["starter"], flow), "PAUSED")
    for name in ("ana", "ben"):
        pages = [client.get("/v1/approvals", params={"limit": 1, "offset": offset}, headers=bearer(keys[name]))
                 .json()["items"] for offset in (0, 1)]
        assert [[a["flow"] for a in page] for page in pages] == [[f"default.for_{name}"], []]


def test_the_inbox_pages_with_a_cursor(engine: Engine, client: TestClient, keys: dict[str, str]) -> None:
    """The inbox is filtered after reading: its cursor still yields each of the caller's own
    approvals once, newest first, skipping the others'."""
    mine = []
    for i in range(5):
        for name in ("ana", "ben"):
            flow = deploy(engine, f"id: c{i}_{name}\ntasks:\n  - {{id: gate, type: approval, message: ok?, approvers: [key:{name}]}}\n")
            execution_id = start(client, keys["starter"], flow)
            wait_state(engine, execution_id, "PAUSED")
            if name == "ana":
                mine.append(gate_of(engine, execution_id)["id"])
    seen, cursor = [], None
    while True:
        page = client.get("/v1/approvals", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                          headers=bearer(keys["ana"])).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    gates = [service(engine).get(gate_id) for gate_id in mine]
    assert seen == [g["id"] for g in sorted(gates, key=lambda g: (g["created_at"], g["id"]), reverse=True)]
