"""Email links and the web page: a GET shows and decides nothing, the POST decides once; expired,
reused, tampered and foreign links are refused and audited; the form's values are validated."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi.testclient import TestClient

from hub.engine.clock import FakeClock
from hub.engine.runner import Engine
from tests.approvals.conftest import (
    PUBLIC_URL,
    bearer,
    deploy,
    emails,
    gate_of,
    link_in,
    service,
    start,
    wait_state,
)

REPLY = """\
id: reply
namespace: support
tasks:
  - id: review
    type: approval
    message: "Send this reply to <b>{{ inputs.customer }}</b>?"
    channels: [web, {email: "ana@example.com, ben@example.com, ops@example.com"}]
    approvers: [ana@example.com, ben@example.com]
    required: {{REQUIRED}}
    timeout: 2h
    form:
      reply: {type: text, default: "Dear {{ inputs.customer }}, ...", required: true}
      priority: {type: enum, options: [low, high], default: low}
      vip: {type: bool, default: false}
      tags: {type: json, default: ["refund"]}
  - {id: send, type: set, values: {reply: "{{ outputs.review.form.reply }}", form: "{{ outputs.review.form }}"}}
inputs:
  - {id: customer, type: string, default: Ana}
outputs: {form: "{{ outputs.send.form }}", decision: "{{ outputs.review.decision }}"}
"""

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def reply(required: int = 1) -> str:
    return REPLY.replace("{{REQUIRED}}", str(required))


def post(client: TestClient, path: str, fields: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(path, content=urlencode(fields).encode(), headers=FORM)


def test_email_link_get_shows_post_decides_once(engine: Engine, client: TestClient, keys: dict[str, str]) -> None:
    execution_id = start(client, keys["starter"], deploy(engine, reply()))
    wait_state(engine, execution_id, "PAUSED")
    sent = {m["recipients"][0]: m for m in emails(engine, execution_id)}
    assert set(sent) == {"ana@example.com", "ben@example.com", "ops@example.com"}
    assert "You are not among the approvers" in sent["ops@example.com"]["message"]["text"]
    assert PUBLIC_URL not in sent["ops@example.com"]["message"]["text"]
    link = link_in(sent["ana@example.com"])
    assert link != link_in(sent["ben@example.com"])  # one link per approver

    page = client.get(link)  # what a mail scanner does
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "&lt;b&gt;Ana&lt;/b&gt;" in page.text and "<b>Ana</b>" not in page.text  # the message is escaped
    assert "Dear Ana, ..." in page.text and "<select" in page.text and "type=checkbox" in page.text
    gate = gate_of(engine, execution_id)
    assert gate["state"] == "pending" and engine.store.get_execution(execution_id)["state"] == "PAUSED"

    invalid = post(client, link, {"decision": "approve", "field.reply": "", "field.priority": "urgent",
                                  "field.tags": "[oops"})
    assert invalid.status_code == 422
    assert "a value is required" in invalid.text and "must be one of low, high" in invalid.text
    assert "is not valid JSON" in invalid.text
    assert service(engine).get(gate["id"])["state"] == "pending"

    done = post(client, link, {"decision": "approve", "field.reply": "Dear Ana,\r\nrefunded.", "field.priority": "high",
                               "field.vip": "true", "field.tags": '["refund", "vip"]', "comment": "ok"})
    assert done.status_code == 200 and "Approved by ana@example.com via email" in done.text
    finished = wait_state(engine, execution_id, "SUCCESS")
    assert finished["outputs"]["form"] == {"reply": "Dear Ana,\nrefunded.", "priority": "high", "vip": True,
                                           "tags": ["refund", "vip"]}

    later = client.get(link)
    assert later.status_code == 200 and "Approved by ana@example.com via email" in later.text
    assert "<form" not in later.text
    reused = post(client, link, {"decision": "reject"})
    assert reused.status_code == 409 and "already approved by ana@example.com" in reused.text
    other = post(client, link_in(sent["ben@example.com"]), {"decision": "reject", "comment": "too late"})
    assert other.status_code == 409

    audit = client.get(f"/v1/approvals/{gate['id']}/audit", headers=bearer(keys["reader"])).json()
    rows = [(a["actor"], a["action"], a["outcome"], a["reason"]) for a in reversed(audit)]
    assert ("email:ana@example.com", "view", "info", None) in rows
    assert ("email:ana@example.com", "approve", "refused", "invalid_form") in rows
    assert ("email:ana@example.com", "approve", "accepted", None) in rows
    assert ("email:ben@example.com", "reject", "refused", "already_decided") in rows


def test_link_is_single_use_even_while_pending(engine: Engine, client: TestClient, keys: dict[str, str]) -> None:
    execution_id = start(client, keys["starter"], deploy(engine, reply(required=2)))
    wait_state(engine, execution_id, "PAUSED")
    sent = {m["recipients"][0]: m for m in emails(engine, execution_id)}
    link = link_in(sent["ana@example.com"])
    first = post(client, link, {"decision": "approve", "field.reply": "Hi"})
    assert first.status_code == 200 and "waits for more approvals" in first.text
    again = post(client, link, {"decision": "approve", "field.reply": "Hi"})
    assert again.status_code == 200  # the same vote again: counted once, nothing changes
    assert len(service(engine).votes(gate_of(engine, execution_id)["id"])) == 1
    flip = post(client, link, {"decision": "reject"})
    assert flip.status_code == 409
    assert "waits for more approvals" in client.get(link).text

    post(client, link_in(sent["ben@example.com"]), {"decision": "approve", "field.reply": "Hello"})
    assert engine.store.get_execution(execution_id)["state"] == "PAUSED"  # ana approved "Hi", not "Hello"
    assert "your approval no longer counts" in client.get(link).text  # her link opens once more
    post(client, link, {"decision": "approve", "field.reply": "Hello"})
    assert wait_state(engine, execution_id, "SUCCESS")["outputs"]["form"]["reply"] == "Hello"


def test_tampered_expired_and_foreign_links(
    engine: Engine, client: TestClient, keys: dict[str, str], clock: FakeClock
) -> None:
    execution_id = start(client, keys["starter"], deploy(engine, reply()))
    wait_state(engine, execution_id, "PAUSED")
    sent = {m["recipients"][0]: m for m in emails(engine, execution_id)}
    link = link_in(sent["ana@example.com"])
    gate = gate_of(engine, execution_id)

    body, _, mac = link.rpartition("/")[2].partition(".")
    forged = link.rpartition("/")[0] + "/" + body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    assert client.get(forged).status_code == 403
    assert post(client, forged, {"decision": "approve"}).status_code == 403
    assert client.get("/v1/approvals/links/garbage").status_code == 403

    foreign = service(engine).link(gate, "email:mallory@example.com", "email").removeprefix(PUBLIC_URL)
    assert client.get(foreign).status_code == 200  # a valid link may be looked at...
    refused = post(client, foreign, {"decision": "approve", "field.reply": "x"})
    assert refused.status_code == 403 and "not among the approvers" in refused.text  # ...but not decide

    clock.now += 3 * 3600  # past the 2h timeout: the link expired with the gate
    expired = post(client, link, {"decision": "approve", "field.reply": "x"})
    assert expired.status_code == 410 and "expired" in expired.text, expired.text[-600:]
    assert client.get(link).status_code == 410
    reasons = {a["reason"] for a in client.get("/v1/approvals/audit", headers=bearer(keys["reader"])).json()}
    assert {"bad_link", "not_approver", "expired"} <= reasons
    assert service(engine).get(gate["id"])["state"] == "pending"  # the timer, not the link, ends it


def test_personal_web_link_for_an_api_key(engine: Engine, client: TestClient, keys: dict[str, str]) -> None:
    source = reply().replace("[ana@example.com, ben@example.com]", "[key:ana, ben@example.com]")
    execution_id = start(client, keys["starter"], deploy(engine, source))
    wait_state(engine, execution_id, "PAUSED")
    gate_id = gate_of(engine, execution_id)["id"]
    assert client.post(f"/v1/approvals/{gate_id}/link", headers=bearer(keys["ben"])).status_code == 403
    url = client.post(f"/v1/approvals/{gate_id}/link", headers=bearer(keys["ana"])).json()["url"]
    assert url.startswith(f"{PUBLIC_URL}/v1/approvals/links/")
    path = url.removeprefix(PUBLIC_URL)
    assert "deciding as key:ana" in client.get(path).text
    assert post(client, path, {"decision": "reject", "comment": "tone is off"}).status_code == 200
    done = wait_state(engine, execution_id, "SUCCESS")
    assert done["outputs"]["decision"] == "rejected"


def test_links_point_where_hub_serve_listens_by_default(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from hub.approvals.settings import ApprovalSettings
    from hub.service.api_cli import serve

    monkeypatch.delenv("HUB_APPROVAL_PUBLIC_URL", raising=False)
    port = next(p.default for p in serve.params if p.name == "port")
    assert ApprovalSettings().public_url == f"http://127.0.0.1:{port}"
