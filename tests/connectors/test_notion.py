"""Notion tasks with the real notion-client talking to a local Notion API (2025-09-03)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.notion.properties import to_notion
from connectors.notion.tasks import AppendBlocks, CreatePage, Query, UpdatePage
from hub.errors import ConnectorError, TaskError
from tests.fakes.context import task_context
from tests.fakes.notion_api import FakeNotion
from tests.fakes.server import serve

SCHEMA = {
    "Name": "title",
    "Notes": "rich_text",
    "Amount": "number",
    "Stage": "select",
    "Tags": "multi_select",
    "Due": "date",
    "Done": "checkbox",
    "Site": "url",
    "Email": "email",
    "Owner": "people",
    "Related": "relation",
    "Score": "formula",
}


@pytest.fixture
def notion(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeNotion, str]]:
    fake = FakeNotion(token="ntn_test")
    with serve(fake.app) as base:
        monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
        monkeypatch.setenv("HUB_NOTION_TOKEN", "ntn_test")
        monkeypatch.setenv("HUB_NOTION_BASE_URL", base)
        yield fake, base


def run(kind: Any, tmp_path: Path, **params: Any) -> Any:
    ctx = task_context(tmp_path)
    return asyncio.run(kind.run(ctx, kind.Params.model_validate(params)))


def test_create_page_maps_plain_values_through_the_schema(notion: tuple[FakeNotion, str], tmp_path: Path) -> None:
    fake, _ = notion
    ds = fake.add_database("Deals", SCHEMA)
    other = run(CreatePage(), tmp_path, data_source_id=ds, properties={"Name": "Other"})
    long_note = "x" * 4500
    out = run(
        CreatePage(),
        tmp_path,
        database_id=fake.database_of(ds),
        properties={
            "Name": "Acme",
            "Notes": long_note,
            "Amount": "1200.5",
            "Stage": "Won",
            "Tags": "b2b, eu",
            "Due": "2024-05-01",
            "Done": "yes",
            "Site": "https://acme.example",
            "Email": "ceo@acme.example",
            "Owner": ["user-1"],
            "Related": other["id"],
        },
        children=["Hello", {"heading_2": "Details"}, {"to_do": "call back", "checked": True}],
        icon="🚀",
    )
    assert out["created"] is True
    assert out["properties"] == {
        "Name": "Acme",
        "Notes": long_note,
        "Amount": 1200.5,
        "Stage": "Won",
        "Tags": ["b2b", "eu"],
        "Due": "2024-05-01",
        "Done": True,
        "Site": "https://acme.example",
        "Email": "ceo@acme.example",
        "Owner": ["user-1"],
        "Related": [other["id"]],
        "Score": None,  # a formula: read-only, still reported
    }
    sent = [r for r in fake.requests if r["path"] == "/v1/pages"][-1]["body"]
    assert sent["parent"] == {"type": "data_source_id", "data_source_id": ds}  # the 2025-09-03 way
    assert sent["properties"]["Stage"] == {"select": {"name": "Won"}}
    assert len(sent["properties"]["Notes"]["rich_text"]) == 3  # split at Notion's 2000-character limit
    assert sent["icon"] == {"type": "emoji", "emoji": "🚀"}
    assert [b["type"] for b in fake.children[out["id"]]] == ["paragraph", "heading_2", "to_do"]

    with pytest.raises(TaskError, match="no property 'Stg'.*known: .*Stage"):
        run(CreatePage(), tmp_path, data_source_id=ds, properties={"Stg": "Won"})
    with pytest.raises(TaskError, match="cannot write"):
        run(CreatePage(), tmp_path, data_source_id=ds, properties={"Score": 3})
    with pytest.raises(TaskError, match="not one"):
        run(CreatePage(), tmp_path, data_source_id=ds, properties={"Amount": "lots"})


def test_unique_by_makes_create_safe_to_rerun(notion: tuple[FakeNotion, str], tmp_path: Path) -> None:
    fake, _ = notion
    ds = fake.add_database("Leads", {"Name": "title", "Email": "email", "Score": "number"})
    first = run(CreatePage(), tmp_path, data_source_id=ds, unique_by="Email", properties={"Name": "Ana", "Email": "a@x.io", "Score": 1})
    again = run(CreatePage(), tmp_path, data_source_id=ds, unique_by="Email", properties={"Name": "Ana", "Email": "a@x.io", "Score": 2})
    assert first["created"] is True and again["created"] is False
    assert again["id"] == first["id"]
    assert [p["id"] for p in fake.pages_in(ds)] == [first["id"]]
    assert again["properties"]["Score"] == 2


def test_query_follows_every_page_with_filters_and_sorts(notion: tuple[FakeNotion, str], tmp_path: Path) -> None:
    fake, _ = notion
    ds = fake.add_database("Tickets", {"Name": "title", "Prio": "number", "Open": "checkbox", "Tags": "multi_select"})
    schema = fake.data_sources[ds]["properties"]
    for i in range(250):
        values = to_notion({"Name": f"t{i:03d}", "Prio": i % 5, "Open": i % 2 == 0, "Tags": ["bug"] if i % 10 == 0 else []}, schema)
        fake.pages[f"00000000-0000-0000-0000-{i:012d}"] = {
            "object": "page", "id": f"00000000-0000-0000-0000-{i:012d}", "created_time": f"2024-01-01T00:00:{i % 60:02d}Z",
            "last_edited_time": "2024-01-01T00:00:00Z", "in_trash": False, "url": "https://notion.so/x",
            "parent": {"type": "data_source_id", "data_source_id": ds}, "properties": fake._properties(schema, values),
        }  # fmt: skip

    everything = run(Query(), tmp_path, data_source_id=ds)
    assert everything["count"] == 250
    queries = [r for r in fake.requests if r["path"].endswith("/query")]
    assert len(queries) == 3 and queries[1]["body"]["start_cursor"]

    open_bugs = run(Query(), tmp_path, database_id=fake.database_of(ds), where={"Open": True, "Tags": "bug"}, sorts=["-Name"])
    names = [p["properties"]["Name"] for p in open_bugs["pages"]]
    assert names == sorted([f"t{i:03d}" for i in range(0, 250, 10)], reverse=True)
    sent = [r for r in fake.requests if r["path"].endswith("/query")][-1]["body"]
    assert sent["filter"] == {"and": [{"property": "Open", "checkbox": {"equals": True}}, {"property": "Tags", "multi_select": {"contains": "bug"}}]}
    assert sent["sorts"] == [{"property": "Name", "direction": "descending"}]

    raw = run(Query(), tmp_path, data_source_id=ds, filter={"property": "Prio", "number": {"greater_than": 3}}, limit=7, raw=True)
    assert raw["count"] == 7 and all(p["properties"]["Prio"] == 4 for p in raw["pages"])
    assert raw["pages"][0]["raw_properties"]["Prio"]["type"] == "number"


def test_update_page_and_append_blocks(notion: tuple[FakeNotion, str], tmp_path: Path) -> None:
    fake, _ = notion
    ds = fake.add_database("Docs", {"Name": "title", "Status": "select", "Tags": "multi_select"})
    page = run(CreatePage(), tmp_path, data_source_id=ds, properties={"Name": "Spec"})
    updated = run(UpdatePage(), tmp_path, page_id=page["id"], properties={"Status": "Review", "Tags": ["a", "b"]})
    assert updated["properties"] == {"Name": "Spec", "Status": "Review", "Tags": ["a", "b"]}
    assert run(UpdatePage(), tmp_path, page_id=page["id"], properties={"Status": None})["properties"]["Status"] is None
    trashed = run(UpdatePage(), tmp_path, page_id=page["id"], in_trash=True)
    assert trashed["in_trash"] is True
    with pytest.raises(TaskError, match="nothing to update"):
        run(UpdatePage(), tmp_path, page_id=page["id"])

    blocks = [f"line {i}" for i in range(150)] + [{"code": "print(1)", "language": "python"}, {"divider": True}]
    out = run(AppendBlocks(), tmp_path, block_id=page["id"], blocks=blocks)
    assert out["count"] == 152
    appends = [r for r in fake.requests if r["method"] == "PATCH" and r["path"].endswith("/children")]
    assert [len(r["body"]["children"]) for r in appends] == [100, 52]
    stored = fake.children[page["id"]]
    assert stored[0]["paragraph"]["rich_text"][0]["plain_text"] == "line 0"
    assert stored[150]["code"]["language"] == "python" and stored[151]["type"] == "divider"

    child = run(CreatePage(), tmp_path, parent_page_id=page["id"], properties={"title": "Sub page"})
    assert child["properties"] == {"title": "Sub page"}


def test_rate_limit_is_retried_after_retry_after(notion: tuple[FakeNotion, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, _ = notion
    ds = fake.add_database("T", {"Name": "title"})
    fake.fail_next(429, "rate_limited", "You have been rate limited.", {"Retry-After": "0"}, times=2)
    out = run(CreatePage(), tmp_path, data_source_id=ds, properties={"Name": "after a wait"})
    assert out["created"]
    assert len([r for r in fake.requests if r["path"] == f"/v1/data_sources/{ds}"]) == 3

    monkeypatch.setenv("HUB_NOTION_MAX_RETRIES", "1")
    fake.fail_next(429, "rate_limited", "You have been rate limited.", {"Retry-After": "0"}, times=2)
    with pytest.raises(ConnectorError) as err:
        run(Query(), tmp_path, data_source_id=ds)
    assert err.value.status == 429 and err.value.retryable and err.value.retry_after == 0
    assert err.value.data["code"] == "rate_limited"

    fake.fail_next(500, "internal_server_error", "oops", {"Retry-After": "0"}, times=2)  # GET retried once, then fails
    with pytest.raises(ConnectorError) as err:
        run(CreatePage(), tmp_path, data_source_id=ds, properties={"Name": "x"})
    assert err.value.status == 500 and err.value.retryable


def test_configuration_and_api_errors(notion: tuple[FakeNotion, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, base = notion
    ds = fake.add_database("Multi", {"Name": "title"}, sources=2)
    db = fake.database_of(ds)
    with pytest.raises(TaskError, match="2 matching data sources.*'Multi 1'"):
        run(Query(), tmp_path, database_id=db)
    assert run(Query(), tmp_path, database_id=db, data_source="Multi 2")["count"] == 0

    with pytest.raises(ConnectorError) as err:
        run(Query(), tmp_path, data_source_id=ds, token="wrong")
    assert err.value.status == 401 and not err.value.retryable and "token" in str(err.value)
    with pytest.raises(ConnectorError, match="share the page"):
        run(UpdatePage(), tmp_path, page_id="nope", properties={"Name": "x"})

    monkeypatch.delenv("HUB_NOTION_TOKEN")
    with pytest.raises(TaskError, match="HUB_NOTION_TOKEN"):
        run(Query(), tmp_path, data_source_id=ds)
    monkeypatch.delenv("HUB_HTTP_ALLOW_HOSTS")
    with pytest.raises(ConnectorError, match="HUB_HTTP_ALLOW_HOSTS"):
        run(Query(), tmp_path, data_source_id=ds, token="ntn_test", base_url=base)
    with pytest.raises(ValueError, match="exactly one parent"):
        CreatePage.Params.model_validate({"data_source_id": "a", "parent_page_id": "b"})
