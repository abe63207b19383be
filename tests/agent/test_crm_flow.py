"""The shipped CRM assistant (flows/crm_assistant.yaml) end to end against local stand-ins: the
scripted OpenAI-compatible model and the HubSpot API fake; the deal changes only after approval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub import approvals
from hub.flow.loader import load_file
from hub.llm.fake import FakeOpenAI, Reply
from hub.testing import result_of
from tests.agent.test_agent import engine_for, tool_results
from tests.fakes.hubspot_api import FakeHubSpot
from tests.fakes.server import serve

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hubspot(monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = FakeHubSpot(token="pat-test")
    with serve(fake.app) as base:
        monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
        monkeypatch.setenv("HUB_HUBSPOT_TOKEN", "pat-test")
        monkeypatch.setenv("HUB_HUBSPOT_BASE_URL", base)
        yield fake


async def test_the_crm_assistant_searches_notes_and_updates_the_deal_after_approval(store, tmp_path, hubspot):
    ada = hubspot.add("contacts", {"email": "ada@example.com", "firstname": "Ada", "deal_ref": "ADA-1"})
    hubspot.add("deals", {"deal_ref": "ADA-1", "dealstage": "contractsent", "amount": "10000"})
    script = [
        Reply(tool_calls=[{"name": "search_contact", "arguments": {"email": "ada@example.com"}}]),
        Reply(tool_calls=[{"name": "draft_note", "arguments": {"id": ada, "body": "Call: Ada signs at 12000 EUR."}}]),
        Reply(tool_calls=[{"name": "update_deal",
                           "arguments": {"deal_ref": "ADA-1", "dealstage": "closedwon", "amount": 12000}}]),
        Reply("Logged the call on Ada's record and closed deal ADA-1 at 11500 EUR."),
    ]
    model = FakeOpenAI()
    model.responder = lambda request: script[tool_results(request)]
    with model.serve() as api_base:
        model.api_base = api_base  # type: ignore[attr-defined]
        engine = engine_for(store, tmp_path / "home", model)
        flow = load_file(ROOT / "flows" / "crm_assistant.yaml")
        execution = await engine.execute(flow, {"request": "Called ada@example.com: she signs for 12000. Close ADA-1."})
        assert execution["state"] == "PAUSED"
        [deal] = [d for d in hubspot.objects["deals"].values()]
        assert deal["properties"]["dealstage"] == "contractsent"  # nothing changed before the approval
        notes = list(hubspot.objects["notes"].values())
        assert len(notes) == 1 and "12000" in notes[0]["properties"]["hs_note_body"]
        service = approvals.install(engine)
        [gate] = service.gates()
        decided = service.decide(gate["id"], ["sales-lead@example.com"], "web", "approve", form={"amount": 11500})
        await service.after_decision(decided.gate)
        await engine.queue.drain(include_timers=False)  # type: ignore[attr-defined]
    done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error
    assert done.outputs["tool_calls"] == 3 and "11500" in done.outputs["answer"]
    assert deal["properties"]["dealstage"] == "closedwon" and deal["properties"]["amount"] == "11500"
    search = next(r for r in hubspot.requests if r["path"].endswith("/search"))
    assert search["body"]["filterGroups"][0]["filters"] == [
        {"propertyName": "email", "operator": "EQ", "value": "ada@example.com"}]
