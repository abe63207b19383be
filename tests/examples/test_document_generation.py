"""flows/document_generation.yaml as shipped: a quote rendered and validated by script steps, then
published in Notion and emailed (outbox), or sent for review in Slack (the fakes, real SDKs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.email import outbox
from hub.flow.loader import load_file
from hub.testing import make_engine, run_flow, serve_app
from tests.fakes.notion_api import FakeNotion
from tests.fakes.slack_api import FakeSlack

FLOW = Path(__file__).resolve().parents[2] / "flows" / "document_generation.yaml"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    notion, slack = FakeNotion(token="ntn_test"), FakeSlack(tokens={"xoxb-test"}, channels={"C0OPS": "sales-ops"})
    with serve_app(notion.app) as notion_url, serve_app(slack.app) as slack_url:
        monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
        monkeypatch.setenv("HUB_NOTION_TOKEN", "ntn_test")
        monkeypatch.setenv("HUB_NOTION_BASE_URL", notion_url)
        monkeypatch.setenv("HUB_SLACK_BASE_URL", f"{slack_url}/api/")
        monkeypatch.setenv("HUB_SLACK_BOT_TOKEN", "xoxb-test")
        for name in ("BACKEND", "SMTP_HOST", "SENDGRID_API_KEY"):
            monkeypatch.delenv(f"HUB_EMAIL_{name}", raising=False)
        source = notion.add_database("Quotes", {"Name": "title", "Total": "number", "Status": "select"})
        yield {"notion": notion, "slack": slack, "db": notion.database_of(source)}


def _inputs(world: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {"customer": "Acme", "email": "buyer@acme.example", "lines": lines, "quotes_db": world["db"], "review_channel": "C0OPS"}


def test_a_valid_quote_is_published_and_sent(world: dict[str, Any], tmp_path: Path) -> None:
    engine = make_engine(home=tmp_path)
    lines = [{"item": "Seats", "qty": 10, "price": 12.5}, {"item": "Support", "qty": 1, "price": 99}]
    result = run_flow(load_file(FLOW), _inputs(world, lines), engine=engine)
    assert result.state == "SUCCESS", result.error
    assert result.outputs["valid"] is True and result.outputs["problems"] == []
    assert result.outputs["total"] == round((125 + 99) * 1.2, 2)
    document = engine.store.get_blob(result.outputs["document"]["blob"][5:]).decode()
    assert "| Seats | 10 | 12.50 | 125.00 |" in document and "Total: 268.80" in document
    [page] = world["notion"].pages.values()
    assert page["properties"]["Total"]["number"] == 268.8
    assert len(world["notion"].children[page["id"]]) == len([x for x in document.splitlines() if x])
    [mail] = outbox.list_messages(engine.store, status="outbox", execution_id=result.id)
    assert mail["subject"] == "Your quote from Example Inc. (268.8)"
    assert world["slack"].messages == {}


def test_an_invalid_quote_goes_to_review_with_its_problems(world: dict[str, Any], tmp_path: Path) -> None:
    engine = make_engine(home=tmp_path)
    result = run_flow(load_file(FLOW), _inputs(world, [{"item": "Seats", "qty": 0, "price": 12.5}]), engine=engine)
    assert result.state == "SUCCESS", result.error
    assert result.outputs["valid"] is False
    assert result.outputs["problems"] == ["Seats: quantity must be positive and price not negative"]
    [message] = world["slack"].messages.values()
    assert message["text"] == "Quote for Acme needs a review: Seats: quantity must be positive and price not negative"
    assert world["notion"].pages == {}
    assert outbox.list_messages(engine.store, status="outbox", execution_id=result.id) == []
