"""Triggers through the API: their state, switching one off and on, a schedule backfill."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.service.conftest import YAML

NIGHTLY = """\
id: nightly
namespace: ops
triggers:
  - {id: night, type: schedule, cron: "0 2 * * *", timezone: Europe/Berlin}
  - {id: hook, type: webhook, secret: abc}
tasks:
  - {id: note, type: log, message: "run for {{ trigger.date | default('now') }}"}
"""


def test_triggers_are_listed_switched_and_backfilled(client: TestClient) -> None:
    assert client.post("/v1/flows", content=NIGHTLY, headers=YAML).status_code == 201
    listed = client.get("/v1/triggers", params={"namespace": "ops"}).json()
    by_id = {t["trigger_id"]: t for t in listed}
    assert set(by_id) == {"night", "hook"}
    assert by_id["night"]["type"] == "schedule" and by_id["night"]["next_fire_at"] is not None
    assert by_id["hook"]["disabled"] is False

    off = client.post("/v1/flows/ops/nightly/triggers/night/disable")
    assert off.status_code == 200 and off.json()["disabled"] is True and off.json()["next_fire_at"] is None
    assert {t["trigger_id"]: t["disabled"] for t in client.get("/v1/triggers").json()}["night"] is True
    on = client.post("/v1/flows/ops/nightly/triggers/night/enable")
    assert on.json()["disabled"] is False

    body = {"from": "2026-01-01T00:00:00+01:00", "to": "2026-01-03T23:59:00+01:00"}
    first = client.post("/v1/flows/ops/nightly/triggers/night/backfill", json=body)
    assert first.status_code == 200, first.text
    items = first.json()
    assert [i["date"][:10] for i in items] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert all(i["created"] for i in items)
    again = client.post("/v1/flows/ops/nightly/triggers/night/backfill", json=body).json()
    assert [i["execution_id"] for i in again] == [i["execution_id"] for i in items]
    assert not any(i["created"] for i in again)  # a time that ran is not started twice

    missing = client.post("/v1/flows/ops/nightly/triggers/nope/disable")
    assert missing.status_code == 404 and missing.json()["code"] == "NotFound"
    backwards = client.post("/v1/flows/ops/nightly/triggers/night/backfill", json={"from": body["to"], "to": body["from"]})
    assert backwards.status_code == 422 and "end of the range is before its start" in backwards.json()["detail"]
    too_many = client.post("/v1/flows/ops/nightly/triggers/night/backfill", json={"from": "2020-01-01", "to": "2026-01-01"})
    assert too_many.status_code == 422 and "narrow the range" in too_many.json()["detail"]
    wrong = client.post("/v1/flows/ops/nightly/triggers/hook/backfill", json=body)
    assert wrong.status_code in (400, 409, 422) and "only schedules backfill" in wrong.json()["detail"]
