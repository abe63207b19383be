"""Edits with a quorum (issue 18, item 3): the latest edit stands and is what the next step gets,
an approval counts for the values it was made on, a decision on an old view is refused, and
every channel (API, email page, Slack message, console) shows the current values and the votes."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from hub.engine.clock import FakeClock
from hub.engine.runner import Engine
from hub.testing import run_flow_async
from tests.approvals.conftest import (
    bearer,
    button,
    deploy,
    emails,
    gate_of,
    link_in,
    service,
    slack_request,
    start,
    wait_state,
)
from tests.console.conftest import csrf, sign_in, text_of
from tests.fakes.slack_api import FakeSlack

# the draft says 20 (an LLM's, here a set step); two approvers must agree
REFUND = """\
id: refund_quorum
namespace: support
tasks:
  - {id: draft, type: set, values: {amount: 20, reply: "We refund 20 EUR."}}
  - id: review
    type: approval
    title: Refund
    message: Refund the customer?
    channels: [{email: "ana@example.com, ben@example.com"}, {slack: "#review"}]
    approvers: [key:ana, key:ben, ana@example.com, ben@example.com, U0BEN]
    required: 2
    form:
      amount: {type: number, default: "{{ outputs.draft.amount }}", min: 0, max: 100}
      reply: {type: text, default: "{{ outputs.draft.reply }}"}
  - id: pay
    type: set
    values: {amount: "{{ outputs.review.form.amount }}", reply: "{{ outputs.review.form.reply }}"}
outputs: {amount: "{{ outputs.pay.amount }}", reply: "{{ outputs.pay.reply }}",
          decision: "{{ outputs.review.decision }}"}
"""
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def paused(engine: Engine, client: TestClient, keys: dict[str, str]) -> tuple[str, str]:
    execution_id = start(client, keys["starter"], deploy(engine, REFUND))
    wait_state(engine, execution_id, "PAUSED")
    return execution_id, gate_of(engine, execution_id)["id"]


def decide(client: TestClient, key: str, gate_id: str, **body: object) -> dict[str, object]:
    response = client.post(f"/v1/approvals/{gate_id}/decision", headers=bearer(key), json={"decision": "approve", **body})
    return {"status": response.status_code, **response.json()}


def test_the_first_approvers_edit_is_what_the_next_step_gets(
    engine: Engine, client: TestClient, keys: dict[str, str]
) -> None:
    """The reported case: ana edits the refund to 25 and approves, ben approves without editing:
    the gate's output and the next step carry 25, never the draft's 20."""
    execution_id, gate_id = paused(engine, client, keys)
    first = decide(client, keys["ana"], gate_id, form={"amount": 25})
    assert first["decided"] is False and first["approval"]["values"] == {"amount": 25, "reply": "We refund 20 EUR."}  # type: ignore[index]
    shown = client.get(f"/v1/approvals/{gate_id}", headers=bearer(keys["reader"])).json()
    assert (shown["revision"], shown["approvals"], shown["values"]["amount"]) == (1, 1, 25)
    [vote] = shown["votes"]
    assert vote["voter"] == "key:ana" and vote["vote"] == "approve" and vote["at"]
    assert vote["changes"] == {"amount": {"from": 20, "to": 25}} and vote["counts"] is True

    second = decide(client, keys["ben"], gate_id)  # no form: approves the values shown, 25
    assert second["decided"] is True
    done = wait_state(engine, execution_id, "SUCCESS")
    assert done["outputs"] == {"amount": 25, "reply": "We refund 20 EUR.", "decision": "approved"}
    step = [s for s in engine.store.step_runs(execution_id) if s["path"] == "review"][-1]
    assert step["output"]["form"]["amount"] == 25 and step["output"]["revision"] == 1
    assert [(v["who"], v["changes"], v["counts"]) for v in step["output"]["votes"]] == [
        ("key:ana", {"amount": {"from": 20, "to": 25}}, True), ("key:ben", None, True)]


def test_an_approval_of_older_values_no_longer_counts(
    engine: Engine, client: TestClient, keys: dict[str, str]
) -> None:
    execution_id, gate_id = paused(engine, client, keys)
    assert decide(client, keys["ana"], gate_id)["decided"] is False  # approves the draft, 20
    edited = decide(client, keys["ben"], gate_id, form={"amount": 15}, revision=0)
    assert edited["decided"] is False  # ana approved 20, not 15: one approval of 15 so far
    approval = edited["approval"]
    assert approval["approvals"] == 1 and approval["revision"] == 1  # type: ignore[index]
    assert [(v["voter"], v["counts"]) for v in approval["votes"]] == [("key:ana", False), ("key:ben", True)]  # type: ignore[index]
    assert engine.store.get_execution(execution_id)["state"] == "PAUSED"

    old_view = decide(client, keys["ana"], gate_id, revision=0)
    assert old_view["status"] == 409 and old_view["code"] == "ValuesChanged"
    assert "edited by key:ben (amount)" in str(old_view["detail"])
    again = decide(client, keys["ana"], gate_id, revision=1)
    assert again["decided"] is True
    assert wait_state(engine, execution_id, "SUCCESS")["outputs"]["amount"] == 15
    audit = [(a["actor"], a["outcome"], a["reason"]) for a in service(engine).audit(gate_id)]
    assert ("key:ana", "refused", "values_changed") in audit
    assert audit.count(("key:ana", "accepted", None)) == 2  # the first approval stays on the record


def test_email_pages_show_the_current_values_and_the_votes(
    engine: Engine, client: TestClient, keys: dict[str, str], slack: FakeSlack
) -> None:
    execution_id, gate_id = paused(engine, client, keys)
    mails = {m["recipients"][0]: link_in(m) for m in emails(engine, execution_id)}
    ana_page = client.get(mails["ana@example.com"]).text
    assert "value='20'" in ana_page and "name=revision value='0'" in ana_page and "No votes yet." in ana_page
    ana = client.post(mails["ana@example.com"], headers=FORM, content=urlencode({
        "decision": "approve", "revision": "0", "field.amount": "25", "field.reply": "We refund 25 EUR."}).encode())
    assert ana.status_code == 200 and "waits for more approvals" in ana.text
    assert "edited amount: 20 → 25; reply: We refund 20 EUR. → We refund 25 EUR." in ana.text

    ben_page = client.get(mails["ben@example.com"]).text
    assert "value='25'" in ben_page and "We refund 25 EUR.</textarea>" in ben_page  # the edit, not the draft
    assert "name=revision value='1'" in ben_page and "ana@example.com: approve via email" in ben_page
    assert "Votes (1 of 2 approvals on the current values)" in ben_page
    stale = client.post(mails["ben@example.com"], headers=FORM, content=urlencode({
        "decision": "approve", "revision": "0", "field.amount": "20", "field.reply": "We refund 20 EUR."}).encode())
    assert stale.status_code == 409 and "edited by ana@example.com" in stale.text
    assert "value='25'" in stale.text  # shown the current values to decide again
    assert service(engine).get(gate_id)["state"] == "pending"
    ok = client.post(mails["ben@example.com"], headers=FORM, content=urlencode({
        "decision": "approve", "revision": "1", "field.amount": "25", "field.reply": "We refund 25 EUR."}).encode())
    assert ok.status_code == 200, ok.text
    assert wait_state(engine, execution_id, "SUCCESS")["outputs"]["reply"] == "We refund 25 EUR."
    final = client.get(mails["ana@example.com"]).text
    assert "Values decided" in final and "25" in final and "ben@example.com: approve via email" in final


def test_a_used_email_link_opens_again_when_its_approval_went_stale(
    engine: Engine, client: TestClient, keys: dict[str, str]
) -> None:
    execution_id, gate_id = paused(engine, client, keys)
    mails = {m["recipients"][0]: link_in(m) for m in emails(engine, execution_id)}
    client.post(mails["ana@example.com"], headers=FORM, content=urlencode({
        "decision": "approve", "revision": "0", "field.amount": "20", "field.reply": "We refund 20 EUR."}).encode())
    assert "waits for more approvals" in client.get(mails["ana@example.com"]).text  # used: the outcome
    decide(client, keys["ben"], gate_id, form={"amount": 18})
    reopened = client.get(mails["ana@example.com"]).text
    assert "your approval no longer counts" in reopened and "value='18'" in reopened
    again = client.post(mails["ana@example.com"], headers=FORM, content=urlencode({
        "decision": "approve", "revision": "1", "field.amount": "18", "field.reply": "We refund 20 EUR."}).encode())
    assert again.status_code == 200
    assert wait_state(engine, execution_id, "SUCCESS")["outputs"]["amount"] == 18
    twice = client.post(mails["ana@example.com"], headers=FORM, content=urlencode({
        "decision": "approve", "revision": "1", "field.amount": "18", "field.reply": "We refund 20 EUR."}).encode())
    assert twice.status_code == 200 and "Approved by" in twice.text  # a double click: nothing changes


def test_the_slack_message_shows_each_vote_and_old_buttons_are_refused(
    engine: Engine, client: TestClient, keys: dict[str, str], slack: FakeSlack
) -> None:
    execution_id, gate_id = paused(engine, client, keys)
    [posted] = slack.posted("chat.postMessage")
    assert [b for b in posted["blocks"] if b["type"] == "actions"][0]["block_id"] == f"hub_approval_{gate_id}.r0"
    decide(client, keys["ana"], gate_id, form={"amount": 25})
    deadline = time.monotonic() + 10
    while not slack.posted("chat.update") and time.monotonic() < deadline:
        time.sleep(0.02)
    [update] = slack.posted("chat.update")
    fields = [f["text"] for b in update["blocks"] if b["type"] == "section" and "fields" in b for f in b["fields"]]
    assert "*amount*\n25" in fields  # the current value, not the draft
    votes = [e["text"] for b in update["blocks"] if b["type"] == "context" for e in b["elements"]
             if e["text"].startswith("*Votes:*")]
    assert votes and "1 of 2 approvals on the current values" in votes[0]
    assert "ana approved via api" in votes[0] and "edited amount: 20 → 25" in votes[0]
    actions = [b for b in update["blocks"] if b["type"] == "actions"][0]
    assert actions["block_id"] == f"hub_approval_{gate_id}.r1"

    old = button(gate_id, "U0BEN")  # ben presses a button of the message as first posted
    old["actions"][0]["block_id"] = f"hub_approval_{gate_id}.r0"
    assert client.post("/v1/slack/interactions", **slack_request(old)).status_code == 200
    assert service(engine).get(gate_id)["state"] == "pending" and len(service(engine).votes(gate_id)) == 1
    assert ("slack:U0BEN", "values_changed") in [(a["actor"], a["reason"]) for a in service(engine).audit(gate_id)]

    current = button(gate_id, "U0BEN")
    current["actions"][0]["block_id"] = actions["block_id"]
    assert client.post("/v1/slack/interactions", **slack_request(current)).status_code == 200
    assert wait_state(engine, execution_id, "SUCCESS")["outputs"]["amount"] == 25
    final = slack.posted("chat.update")[-1]
    assert "*Approved* by <@U0BEN> via slack" in final["blocks"][-1]["text"]["text"]
    summary = [e["text"] for b in final["blocks"] if b["type"] == "context" for e in b["elements"]][0]
    assert "2 of 2 approvals" in summary and "<@U0BEN> approved via slack" in summary


@pytest.mark.anyio
async def test_timeout_approve_keeps_the_edit(engine: Engine, clock: FakeClock) -> None:
    flow = REFUND.replace("    required: 2\n", "    required: 2\n    timeout: 1h\n    on_timeout: approve\n") \
        .replace("channels: [{email: \"ana@example.com, ben@example.com\"}, {slack: \"#review\"}]", "channels: [web]")
    result = await run_flow_async(flow, engine=engine, drain=False)
    gate = service(engine).gates()[0]
    service(engine).decide(gate["id"], ["key:ana"], "api", "approve", form={"amount": 30})
    clock.now += 3601
    assert await engine.resume_interrupted() == [result.id]
    done = engine.store.get_execution(result.id)
    assert done["state"] == "SUCCESS" and done["outputs"]["amount"] == 30
    await engine.queue.close()  # type: ignore[attr-defined]


def test_the_console_shows_the_current_values_and_the_votes(
    engine: Engine, client: TestClient, keys: dict[str, str]
) -> None:
    execution_id, gate_id = paused(engine, client, keys)
    decide(client, keys["ana"], gate_id)
    decide(client, keys["ben"], gate_id, form={"reply": "Refund of 20 EUR on its way."})
    sign_in(client, keys["ana"])
    page = client.get(f"/approvals/{gate_id}").text
    text = text_of(page)
    assert "Refund of 20 EUR on its way.</textarea>" in page and 'name="revision" value="1"' in page
    assert "your approval no longer counts" in text
    assert "1 of 2 approvals on the current values (revision 1)" in text
    assert "key:ana : approve via api" in text and "values edited since: no longer counts" in text
    assert "edited reply: We refund 20 EUR. → Refund of 20 EUR on its way." in text
    stale = client.post(f"/approvals/{gate_id}/decide", data={
        "csrf": csrf(client, f"/approvals/{gate_id}"), "decision": "approve", "revision": "0",
        "field.amount": "20", "field.reply": "We refund 20 EUR."}, follow_redirects=False)
    assert stale.status_code == 409 and "edited by key:ben (reply)" in text_of(stale.text)
    ok = client.post(f"/approvals/{gate_id}/decide", data={
        "csrf": csrf(client, f"/approvals/{gate_id}"), "decision": "approve", "revision": "1",
        "field.amount": "20", "field.reply": "Refund of 20 EUR on its way."}, follow_redirects=False)
    assert ok.status_code == 303, text_of(ok.text)
    assert wait_state(engine, execution_id, "SUCCESS")["outputs"]["reply"] == "Refund of 20 EUR on its way."
