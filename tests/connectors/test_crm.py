"""CRM tasks against a local HubSpot API (v3 objects, v4 associations) over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.crm.tasks import AddNote, Associate, Get, Search, Upsert
from hub.errors import ConnectorError, TaskError
from tests.fakes.context import task_context
from tests.fakes.hubspot_api import FakeHubSpot
from tests.fakes.server import serve


@pytest.fixture
def hubspot(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot(token="pat-test")
    with serve(fake.app) as base:
        monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
        monkeypatch.setenv("HUB_HUBSPOT_TOKEN", "pat-test")
        monkeypatch.setenv("HUB_HUBSPOT_BASE_URL", base)
        yield fake


def run(kind: Any, tmp_path: Path, **params: Any) -> Any:
    ctx = task_context(tmp_path, execution_id="exec1", task_id="crm")
    return asyncio.run(kind.run(ctx, kind.Params.model_validate(params)))


def test_upsert_in_batches_by_id_property(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    existing = hubspot.add("contacts", {"email": "c0@x.io", "firstname": "Old"})
    records = [{"email": f"c{i}@x.io", "firstname": f"N{i}", "vip": i % 2 == 0, "tags": ["a", "b"]} for i in range(250)]
    out = run(Upsert(), tmp_path, object="contacts", id_property="email", records=records)
    assert out["count"] == 250 and out["created"] == 249 and out["updated"] == 1
    assert out["rate_limit"]["max"] == 190 and out["rate_limit"]["remaining"] < 190
    batches = [r["body"]["inputs"] for r in hubspot.requests if r["path"].endswith("/batch/upsert")]
    assert [len(b) for b in batches] == [100, 100, 50]
    first = batches[0][0]
    assert first["idProperty"] == "email" and first["id"] == "c0@x.io"
    assert first["properties"]["vip"] == "true" and first["properties"]["tags"] == "a;b"
    assert first["objectWriteTraceId"] == "exec1:crm:0"
    assert hubspot.objects["contacts"][existing]["properties"]["firstname"] == "N0"

    again = run(Upsert(), tmp_path, object="contacts", id_property="email", records=records[:3])
    assert again["created"] == 0 and again["updated"] == 3  # a re-run changes nothing twice
    assert len(hubspot.objects["contacts"]) == 250

    with pytest.raises(TaskError, match="no 'email'"):
        run(Upsert(), tmp_path, object="contacts", id_property="email", records=[{"firstname": "x"}])


def test_upsert_partial_failure_is_reported(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    hubspot.invalid_properties = {"shoe_size"}
    records = [{"email": "a@x.io"}, {"email": "b@x.io", "shoe_size": 42}]
    with pytest.raises(TaskError, match="1 of 2 records failed.*shoe_size") as err:
        run(Upsert(), tmp_path, object="contacts", id_property="email", records=records)
    assert err.value.data["errors"][0]["category"] == "VALIDATION_ERROR"
    out = run(Upsert(), tmp_path, object="contacts", id_property="email", records=records, allow_errors=True)
    assert out["count"] == 1 and len(out["errors"]) == 1
    with pytest.raises(ConnectorError, match="not a unique identifier") as cerr:
        run(Upsert(), tmp_path, object="contacts", id_property="firstname", records=[{"firstname": "x"}])
    assert cerr.value.status == 400 and not cerr.value.retryable


def test_search_follows_paging_and_translates_filters(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    for i in range(230):
        hubspot.add("companies", {"domain": f"d{i}.io", "name": f"Co {i:03d}", "employees": i, "country": "DE" if i % 2 else "FR"})
    out = run(Search(), tmp_path, object="companies", filters={"country": "DE"}, properties=["name", "employees"], sorts=["-name"])
    assert out["count"] == out["total"] == 115
    assert out["results"][0]["properties"]["name"] == "Co 229"
    pages = [r["body"] for r in hubspot.requests if r["path"].endswith("/search")]
    assert len(pages) == 2 and pages[1]["after"] == "100"
    assert pages[0]["filterGroups"] == [{"filters": [{"propertyName": "country", "operator": "EQ", "value": "DE"}]}]
    assert pages[0]["sorts"] == [{"propertyName": "name", "direction": "DESCENDING"}]

    big_or_first = run(
        Search(), tmp_path, object="companies", limit=5,
        filters=[{"property": "employees", "operator": "gte", "value": 100}],
        any_of=[[{"property": "country", "value": "FR"}], [{"property": "domain", "operator": "in", "value": ["d1.io", "d101.io"]}]],
    )  # fmt: skip
    assert big_or_first["count"] == 5
    sent = [r["body"] for r in hubspot.requests if r["path"].endswith("/search")][-1]
    assert sent["limit"] == 5 and len(sent["filterGroups"]) == 2
    assert sent["filterGroups"][1]["filters"][1] == {"propertyName": "domain", "operator": "IN", "values": ["d1.io", "d101.io"]}


def test_get_associate_and_add_note(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    contact = hubspot.add("contacts", {"email": "ana@acme.io", "firstname": "Ana"})
    company = hubspot.add("companies", {"domain": "acme.io", "name": "Acme"})
    got = run(Get(), tmp_path, object="contacts", id="ana@acme.io", id_property="email", properties=["firstname"])
    assert got == {"found": True, "record": {"id": contact, "properties": {"firstname": "Ana"}, "created_at": got["record"]["created_at"], "updated_at": got["record"]["updated_at"]}}
    assert run(Get(), tmp_path, object="contacts", id="999")["found"] is False
    with pytest.raises(TaskError, match="does not exist"):
        run(Get(), tmp_path, object="contacts", id="999", required=True)

    linked = run(Associate(), tmp_path, from_object="contacts", from_id=contact, to_object="companies", to_id=company)
    assert linked["status"] == "COMPLETE"
    run(Associate(), tmp_path, from_object="contacts", from_id=contact, to_object="companies", to_id=company, type_id=1)
    assert ("contacts", contact, "companies", company, None) in hubspot.associations
    assert ("contacts", contact, "companies", company, 1) in hubspot.associations
    with pytest.raises(ConnectorError) as err:
        run(Associate(), tmp_path, from_object="contacts", from_id=contact, to_object="companies", to_id="404")
    assert err.value.status == 404 and err.value.data["category"] == "OBJECT_NOT_FOUND"

    note = run(AddNote(), tmp_path, object="contacts", id=contact, body="Called, wants a demo")
    assert note["properties"]["hs_note_body"] == "Called, wants a demo"
    assert ("notes", note["id"], "?", contact, 202) in hubspot.associations
    with pytest.raises(TaskError, match="association_type_id"):
        run(AddNote(), tmp_path, object="quotes", id="1", body="x")


def test_rate_limits_and_configuration(hubspot: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hubspot.rate_limit_next(times=2, retry_after="0")
    out = run(Search(), tmp_path, object="contacts")
    assert out["count"] == 0  # waited out twice, then answered
    hubspot.rate_limit_next(times=5, retry_after="0")
    with pytest.raises(ConnectorError) as err:
        run(Search(), tmp_path, object="contacts")
    assert err.value.status == 429 and err.value.retryable and err.value.retry_after == 0
    assert err.value.data["category"] == "RATE_LIMIT"
    hubspot._failures.clear()

    hubspot.rate_limit_next(times=1, retry_after=None, policy="DAILY")
    with pytest.raises(ConnectorError, match="daily") as err:
        run(Search(), tmp_path, object="contacts")
    assert err.value.retryable and err.value.retry_after is None  # no point waiting inside the step

    hubspot.fail_next(502, "BAD_GATEWAY", "upstream")
    with pytest.raises(ConnectorError) as err:
        run(Get(), tmp_path, object="contacts", id="1")
    assert err.value.status == 502 and err.value.retryable

    with pytest.raises(ConnectorError, match="token") as err:
        run(Search(), tmp_path, object="contacts", token="wrong")
    assert err.value.status == 401 and not err.value.retryable
    with pytest.raises(TaskError, match="unknown CRM provider 'salesfarce'"):
        run(Search(), tmp_path, object="contacts", provider="salesfarce")
    monkeypatch.delenv("HUB_HUBSPOT_TOKEN")
    with pytest.raises(TaskError, match="HUB_HUBSPOT_TOKEN"):
        run(Search(), tmp_path, object="contacts")
