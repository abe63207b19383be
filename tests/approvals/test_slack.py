"""Slack: the Block Kit request, signed interactions (valid, forged, stale), approvers only, the
message updated with who decided and when, personal form links, and kill cancelling the gate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.engine.runner import Engine
from tests.approvals.conftest import (
    bearer,
    button,
    deploy,
    gate_of,
    service,
    slack_request,
    start,
    wait_state,
)
from tests.fakes.server import serve
from tests.fakes.slack_api import FakeSlack

REVIEW = """\
id: lead_review
namespace: sales
tasks:
  - id: review
    type: approval
    message: "Lead ana@example.com scored 0.42 <low>"
    channels: [{slack: "#review"}]
    approvers: [U0ANA, U0BEN]
    form: {segment: {type: enum, options: [smb, enterprise], default: smb}}
  - {id: after, type: set, values: {segment: "{{ outputs.review.form.segment }}", d: "{{ outputs.review.decision }}"}}
outputs: {segment: "{{ outputs.after.segment }}", decision: "{{ outputs.after.d }}",
          channel: "{{ outputs.review.decided_by.channel }}"}
"""


class Responses:
    """Where Slack's response_url points in these tests: records the ephemeral answers."""

    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []

        async def hook(request: Request) -> JSONResponse:
            self.posted.append(await request.json())
            return JSONResponse({"ok": True})

        self.app = Starlette(routes=[Route("/actions/{rest:path}", hook, methods=["POST"])])


@pytest.fixture
def responses() -> Iterator[tuple[Responses, str]]:
    recorder = Responses()
    with serve(recorder.app) as url:
        yield recorder, f"{url}/actions/T0TEAM/123"


def paused_review(engine: Engine, client: TestClient, keys: dict[str, str]) -> tuple[str, dict[str, Any]]:
    execution_id = start(client, keys["starter"], deploy(engine, REVIEW))
    wait_state(engine, execution_id, "PAUSED")
    return execution_id, gate_of(engine, execution_id)


def interact(client: TestClient, payload: dict[str, Any], **kw: Any) -> Any:
    return client.post("/v1/slack/interactions", **slack_request(payload, **kw))


def test_request_message_and_signed_approval(
    engine: Engine, client: TestClient, keys: dict[str, str], slack: FakeSlack
) -> None:
    execution_id, gate = paused_review(engine, client, keys)
    [posted] = slack.posted("chat.postMessage")
    assert posted["channel"] == "#review" and "Approval needed" in posted["text"]
    actions = [b for b in posted["blocks"] if b["type"] == "actions"][0]["elements"]
    assert [(a["action_id"], a["value"]) for a in actions] == [
        ("hub_approve", gate["id"]), ("hub_reject", gate["id"]), ("hub_form", gate["id"])]
    section = posted["blocks"][1]["text"]["text"]
    assert section == "Lead ana@example.com scored 0.42 &lt;low&gt;"
    [message] = service(engine).messages(gate["id"])
    assert message["channel_id"] == "C0REVIEW" and message["ts"]

    answer = interact(client, button(gate["id"], "U0ANA", ts=message["ts"]))
    assert answer.status_code == 200 and answer.content == b""
    done = wait_state(engine, execution_id, "SUCCESS")
    assert done["outputs"] == {"segment": "smb", "decision": "approved", "channel": "slack"}

    [update] = slack.posted("chat.update")
    assert update["channel"] == "C0REVIEW" and update["ts"] == message["ts"]
    text = update["blocks"][-1]["text"]["text"]
    assert "*Approved* by <@U0ANA> via slack" in text and "<!date^" in text
    assert not any(b["type"] == "actions" for b in update["blocks"])  # no buttons once decided
    assert slack.messages[("C0REVIEW", message["ts"])]["blocks"] == update["blocks"]

    interact(client, button(gate["id"], "U0ANA", ts=message["ts"]))  # a double click
    interact(client, button(gate["id"], "U0BEN", "hub_reject", ts=message["ts"]))  # too late
    assert len(service(engine).votes(gate["id"])) == 1
    assert service(engine).get(gate["id"])["decision"] == "approved"


def test_forged_stale_and_foreign_requests_are_refused(
    engine: Engine, client: TestClient, keys: dict[str, str], slack: FakeSlack
) -> None:
    execution_id, gate = paused_review(engine, client, keys)
    forged = interact(client, button(gate["id"], "U0ANA"), secret="not-the-secret")
    assert forged.status_code == 401
    stale = interact(client, button(gate["id"], "U0ANA"), at=time.time() - 6 * 60)
    assert stale.status_code == 401
    future = interact(client, button(gate["id"], "U0ANA"), at=time.time() + 6 * 60)
    assert future.status_code == 401
    request = slack_request(button(gate["id"], "U0ANA"))
    request["content"] = request["content"].replace(b"U0ANA", b"U0BEN")  # body changed after signing
    assert client.post("/v1/slack/interactions", **request).status_code == 401

    stranger = interact(client, button(gate["id"], "U0EVE"))
    assert stranger.status_code == 200  # acknowledged, then refused
    assert service(engine).get(gate["id"])["state"] == "pending"
    assert engine.store.get_execution(execution_id)["state"] == "PAUSED"
    assert slack.posted("chat.update") == []

    audit = client.get("/v1/approvals/audit", headers=bearer(keys["reader"])).json()
    reasons = [(a["actor"], a["reason"]) for a in audit if a["outcome"] == "refused"]
    assert reasons.count((None, "bad_signature")) == 2 and reasons.count((None, "stale")) == 2
    assert ("slack:U0EVE", "not_approver") in reasons


def test_form_button_sends_a_personal_link(
    engine: Engine, client: TestClient, keys: dict[str, str], slack: FakeSlack, responses: tuple[Responses, str]
) -> None:
    recorder, response_url = responses
    execution_id, gate = paused_review(engine, client, keys)
    stranger = {**button(gate["id"], "U0EVE", "hub_form"), "response_url": response_url}
    interact(client, stranger)
    assert recorder.posted[-1]["text"] == "You are not among the approvers of this request."
    interact(client, {**button(gate["id"], "U0BEN", "hub_form"), "response_url": response_url})
    answer = recorder.posted[-1]
    assert answer["response_type"] == "ephemeral" and "/v1/approvals/links/" in answer["text"]
    path = "/v1/approvals/links/" + answer["text"].split("/v1/approvals/links/")[1].split("|")[0]
    assert "deciding as slack:U0BEN" in client.get(path).text
    decided = client.post(path, content=b"decision=approve&field.segment=enterprise",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert decided.status_code == 200
    done = wait_state(engine, execution_id, "SUCCESS")
    assert done["outputs"] == {"segment": "enterprise", "decision": "approved", "channel": "slack"}
    assert "*Approved* by <@U0BEN> via slack" in slack.posted("chat.update")[-1]["blocks"][-1]["text"]["text"]


def test_kill_cancels_the_gate_and_updates_the_message(
    engine: Engine, client: TestClient, keys: dict[str, str], slack: FakeSlack
) -> None:
    execution_id, gate = paused_review(engine, client, keys)
    killed = client.post(f"/v1/executions/{execution_id}/kill", headers=bearer(keys["starter"]))
    assert killed.status_code == 200 and killed.json()["state"] == "KILLED"
    deadline = time.monotonic() + 10
    while not slack.posted("chat.update") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert service(engine).get(gate["id"])["state"] == "cancelled"
    [update] = slack.posted("chat.update")
    assert "*Cancelled*" in update["blocks"][-1]["text"]["text"]
    late = interact(client, button(gate["id"], "U0ANA"))
    assert late.status_code == 200
    assert engine.store.get_execution(execution_id)["state"] == "KILLED"
    assert service(engine).votes(gate["id"]) == []
