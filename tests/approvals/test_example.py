"""The shipped example, flows/refund_approval.yaml: finance edits the amount and the reply from the
email link, and the edited reply is what the customer gets."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi.testclient import TestClient

from hub.engine.runner import Engine
from tests.approvals.conftest import deploy, emails, gate_of, link_in, service, start, wait_state

FLOW = Path(__file__).parents[2] / "flows" / "refund_approval.yaml"


def test_refund_example_edit_then_send(engine: Engine, client: TestClient, keys: dict[str, str]) -> None:
    flow = deploy(engine, FLOW.read_text())
    execution_id = start(client, keys["starter"], flow, {
        "order_id": "A-1001", "customer_email": "customer@example.org", "amount": 49.9,
        "reason": "Parcel arrived damaged <script>",
    })
    wait_state(engine, execution_id, "PAUSED")
    gate = gate_of(engine, execution_id)
    assert gate["approvers"] == ["email:finance-lead@example.com", "slack:U024BE7LH"]  # the flow's group label
    assert gate["form"]["reply"]["default"].startswith("We are sorry about your order A-1001")
    slack_message = [m for m in service(engine).messages(gate["id"]) if m["kind"] == "slack"][0]
    assert "Slack is not configured" in slack_message["error"]  # said, not dropped; the email still went

    [request] = emails(engine, execution_id)
    assert request["recipients"] == ["finance-lead@example.com"]
    page = client.get(link_in(request))
    assert "&lt;script&gt;" in page.text and "<script>" not in page.text
    over = client.post(link_in(request), content=urlencode({"decision": "approve", "field.amount": "60",
                                                            "field.reply": "x"}).encode(),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert over.status_code == 422 and "must be at most 49.9" in over.text
    done = client.post(link_in(request), content=urlencode({
        "decision": "approve", "field.amount": "40", "field.reply": "Refunded 40 EUR, sorry!"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200
    finished = wait_state(engine, execution_id, "SUCCESS")
    assert finished["outputs"] == {"decision": "approved", "refunded": 40, "decided_by": "finance-lead@example.com"}
    reply = [m for m in emails(engine, execution_id) if m["recipients"] == ["customer@example.org"]][0]
    assert reply["message"]["text"] == "Refunded 40 EUR, sorry!" and reply["status"] == "outbox"
