"""flows/incident_monitoring.yaml as shipped: a stand-in service's health endpoint, the Notion and
Slack fakes with their real SDKs, email to the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.email import outbox
from hub.flow.loader import load_file
from hub.testing import make_engine, run_flow, serve_app
from tests.fakes.notion_api import FakeNotion
from tests.fakes.slack_api import FakeSlack

FLOW = Path(__file__).resolve().parents[2] / "flows" / "incident_monitoring.yaml"


class Service:
    def __init__(self) -> None:
        self.answer: tuple[int, dict[str, Any]] = (200, {"status": "ok"})

        async def health(request: Request) -> JSONResponse:
            return JSONResponse(self.answer[1], status_code=self.answer[0])

        self.app = Starlette(routes=[Route("/health", health)])


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    service, notion = Service(), FakeNotion(token="ntn_test")
    slack = FakeSlack(tokens={"xoxb-test"}, channels={"C0INC": "incidents"})
    with serve_app(service.app) as svc, serve_app(notion.app) as notion_url, serve_app(slack.app) as slack_url:
        monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
        monkeypatch.setenv("HUB_NOTION_TOKEN", "ntn_test")
        monkeypatch.setenv("HUB_NOTION_BASE_URL", notion_url)
        monkeypatch.setenv("HUB_SLACK_BASE_URL", f"{slack_url}/api/")
        monkeypatch.setenv("HUB_SLACK_BOT_TOKEN", "xoxb-test")
        for name in ("BACKEND", "SMTP_HOST", "SENDGRID_API_KEY"):
            monkeypatch.delenv(f"HUB_EMAIL_{name}", raising=False)
        source = notion.add_database("Incidents", {"Name": "title", "Key": "rich_text", "Status": "select", "Service": "rich_text"})
        db = notion.database_of(source)
        yield {"service": service, "notion": notion, "slack": slack, "url": f"{svc}/health", "db": db}


def _inputs(world: dict[str, Any]) -> dict[str, Any]:
    return {"url": world["url"], "service": "payments", "incidents_db": world["db"], "channel": "C0INC", "oncall": "sre@example.com"}


def test_a_healthy_service_opens_nothing(world: dict[str, Any], tmp_path: Path) -> None:
    result = run_flow(load_file(FLOW), _inputs(world), home=tmp_path)
    assert result.state == "SUCCESS", result.error
    assert result.outputs == {"healthy": True, "status": 200}
    assert world["notion"].pages == {} and world["slack"].messages == {}


def test_an_outage_opens_one_incident_and_pages_everyone(world: dict[str, Any], tmp_path: Path) -> None:
    world["service"].answer = (503, {"status": "down", "detail": "database unreachable"})
    engine = make_engine(home=tmp_path)
    first = run_flow(load_file(FLOW), _inputs(world), engine=engine)
    assert first.state == "SUCCESS", first.error
    assert first.outputs == {"healthy": False, "status": 503}
    [page] = world["notion"].pages.values()
    title = page["properties"]["Name"]["title"][0]["plain_text"] if "plain_text" in page["properties"]["Name"]["title"][0] \
        else page["properties"]["Name"]["title"][0]["text"]["content"]
    assert title == "payments answered 503: database unreachable"
    [message] = world["slack"].messages.values()
    assert message["text"].startswith(":rotating_light: payments answered 503: database unreachable")
    [mail] = outbox.list_messages(engine.store, status="outbox", execution_id=first.id)
    assert mail["subject"] == "[incident] payments answered 503: database unreachable"

    second = run_flow(load_file(FLOW), _inputs(world), engine=engine)  # the next probe, still down
    assert second.state == "SUCCESS", second.error
    assert len(world["notion"].pages) == 1  # the day's incident page is updated, not duplicated
    assert second.output("incident")["created"] is False
