"""Executions over the API: start, list with filters, get with steps, kill, restart from the failed
step, replay from a chosen step into a new execution, logs and live updates (SSE)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from hub.store.store import Store
from tests.service.conftest import assert_error, deploy, wait_for

FLAKY = """\
id: flaky
namespace: demo
inputs:
  - {id: flag, type: string, required: true}
tasks:
  - {id: first, type: python, function: "tests.service.steps:count", args: [first]}
  - {id: second, type: python, function: "tests.service.steps:fail_while", args: ["{{ inputs.flag }}"]}
  - {id: third, type: python, function: "tests.service.steps:count", args: [third]}
outputs: {first: "{{ outputs.first.calls }}"}
"""

SLOW = """\
id: slow
namespace: demo
inputs:
  - {id: seconds, type: float, default: 30}
tasks:
  - {id: nap, type: python, function: "tests.service.steps:slow", args: ["{{ inputs.seconds }}"]}
"""


def test_start_get_list_and_logs(client: TestClient) -> None:
    deploy(client)
    started = client.post("/v1/flows/demo/hello/executions", json={"inputs": {"name": "ana"}, "labels": {"team": "a"}})
    assert started.status_code == 201 and started.json()["flow"] == "demo.hello"
    done = wait_for(client, started.json()["id"])
    assert done["state"] == "SUCCESS" and done["outputs"] == {"greeting": "hi ana"}
    assert [s["path"] for s in done["steps"]] == ["greet", "shout"]
    assert done["trigger"] == {"type": "api"} and done["labels"] == {"team": "a"}

    other = client.post("/v1/flows/demo/hello/executions", json={}).json()["id"]
    wait_for(client, other)
    assert {e["id"] for e in client.get("/v1/executions").json()["items"]} == {done["id"], other}
    assert [e["id"] for e in client.get("/v1/executions", params={"label": "team:a"}).json()["items"]] == [done["id"]]
    assert len(client.get("/v1/executions", params={"flow": "demo.hello", "state": "SUCCESS"}).json()["items"]) == 2
    assert client.get("/v1/executions", params={"namespace": "other"}).json()["items"] == []
    assert client.get("/v1/executions", params={"state": "FAILED"}).json()["items"] == []
    assert client.get("/v1/executions", params={"since": time.time() + 60}).json()["items"] == []
    assert len(client.get("/v1/executions", params={"until": "2999-01-01T00:00:00+00:00"}).json()["items"]) == 2
    assert len(client.get("/v1/executions", params={"limit": 1}).json()["items"]) == 1
    assert_error(client.get("/v1/executions", params={"state": "DONE"}), 422, "Unprocessable")
    assert_error(client.get("/v1/executions", params={"label": "nolabel"}), 400)
    assert_error(client.get("/v1/executions", params={"since": "yesterday"}), 400)

    logs = client.get(f"/v1/executions/{done['id']}/logs").json()
    assert [line["message"] for line in logs] == ["hi ana"]


def test_the_list_pages_with_a_next_cursor(client: TestClient, engine: Any) -> None:
    rows = [Store.execution_row(namespace="demo", flow_id="hello", revision=1, inputs={}, state=state)
            for state in ["SUCCESS", "FAILED", "SUCCESS"] * 4]
    engine.store.insert_executions(rows)
    failed = {r["id"] for r in rows if r["state"] == "FAILED"}

    seen, params = [], {"state": "FAILED", "limit": 3}
    while True:
        page = client.get("/v1/executions", params=params).json()
        seen += [e["id"] for e in page["items"]]
        if page["next"] is None:
            break
        assert len(page["items"]) == 3
        params = {**params, "cursor": page["next"]}
    assert len(seen) == len(set(seen)) == 4 and set(seen) == failed
    assert client.get("/v1/executions", params={"limit": 12}).json()["next"] is None  # exactly one full page

    assert_error(client.get("/v1/executions", params={"cursor": "bm9wZQ"}), 400, "BadRequest")  # "nope"
    assert_error(client.get("/v1/executions", params={"cursor": "%%%"}), 400, "BadRequest")
    first = client.get("/v1/executions", params={"limit": 1}).json()["next"]
    assert_error(client.get("/v1/executions", params={"cursor": first, "offset": 1}), 400, "BadRequest")


def test_start_errors(client: TestClient) -> None:
    assert_error(client.post("/v1/flows/demo/hello/executions", json={}), 404, "NotFound")
    deploy(client)
    error = assert_error(client.post("/v1/flows/demo/hello/executions", json={"inputs": {"nme": "x"}}), 422, "InputError")
    assert "'nme' is not an input of demo.hello" in error["details"][0]["message"]
    assert_error(client.post("/v1/flows/demo/hello/executions", json={"inputs": [1]}), 422, "Unprocessable")
    bad_json = client.post("/v1/flows/demo/hello/executions", content="{nope", headers={"content-type": "application/json"})
    assert_error(bad_json, 400, "BadRequest")
    assert_error(client.get("/v1/executions/nope"), 404, "NotFound")
    unknown = assert_error(client.get("/v1/nowhere"), 404, "NotFound")
    assert unknown["title"] == "Not found" and unknown["detail"] == "no such endpoint: GET /v1/nowhere"


def test_the_openapi_document_describes_errors_as_problem_details(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    errors = {
        (path, method, status): response["content"]
        for path, item in spec["paths"].items() for method, op in item.items()
        for status, response in op["responses"].items() if status[0] in "45" and "content" in response
    }
    assert errors.pop(("/ready", "get", "503"))["application/json"]["schema"]["$ref"].endswith("/Health")  # not an error body
    assert errors and all(list(content) == ["application/problem+json"] for content in errors.values())
    assert errors[("/v1/executions", "get", "422")]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code", "details", "error"} <= set(problem["required"]) | {"details"}


def test_restart_from_failed_step_and_replay(client: TestClient, tmp_path: Path) -> None:
    from tests.service import steps

    steps.CALLS.clear()
    deploy(client, FLAKY)
    flag = tmp_path / "flag"
    flag.touch()
    execution_id = client.post("/v1/flows/demo/flaky/executions", json={"inputs": {"flag": str(flag)}}).json()["id"]
    failed = wait_for(client, execution_id)
    assert failed["state"] == "FAILED" and failed["error"]["path"] == "second"
    assert_error(client.post(f"/v1/executions/{execution_id}/resume"), 409, "HubError")

    flag.unlink()
    assert client.post(f"/v1/executions/{execution_id}/restart").status_code == 200
    restarted = wait_for(client, execution_id, lambda s: s in ("SUCCESS", "FAILED"))
    assert restarted["state"] == "SUCCESS"
    assert steps.CALLS == {"first": 1, "third": 1}  # first is not run again
    assert_error(client.post(f"/v1/executions/{execution_id}/restart"), 409, "HubError")

    # replay from "second": a NEW execution reusing "first", running second and third again
    replay = client.post(f"/v1/executions/{execution_id}/replay", json={"from_step": "second"})
    assert replay.status_code == 201
    new = wait_for(client, replay.json()["id"])
    assert new["id"] != execution_id and new["state"] == "SUCCESS" and new["restarted_from"] == execution_id
    assert new["trigger"]["type"] == "replay" and new["trigger"]["step"] == "second"
    assert steps.CALLS == {"first": 1, "third": 2}
    assert new["outputs"] == {"first": 1}

    # replay from the first step runs everything again
    again = wait_for(client, client.post(f"/v1/executions/{execution_id}/replay",
                                         json={"from_step": "first"}).json()["id"])
    assert again["state"] == "SUCCESS" and steps.CALLS == {"first": 2, "third": 3}

    assert_error(client.post(f"/v1/executions/{execution_id}/replay", json={"from_step": "nope"}), 404)
    assert_error(client.post(f"/v1/executions/{execution_id}/replay", json={"from_step": "first", "x": 1}), 422)
    assert_error(client.post(f"/v1/executions/{execution_id}/replay",
                             json={"from_step": "first", "inputs": {"flag": 1, "bad": 2}}), 422, "InputError")


def test_kill_a_running_execution(client: TestClient) -> None:
    deploy(client, SLOW)
    execution_id = client.post("/v1/flows/demo/slow/executions", json={}).json()["id"]
    wait_for(client, execution_id, lambda s: s == "RUNNING")
    killed = client.post(f"/v1/executions/{execution_id}/kill")
    assert killed.status_code == 200 and killed.json()["state"] == "KILLED"
    steps = client.get(f"/v1/executions/{execution_id}").json()["steps"]
    assert steps[-1]["state"] == "KILLED"
    assert client.post(f"/v1/executions/{execution_id}/kill").json()["state"] == "KILLED"  # idempotent


def _events(client: TestClient, execution_id: str) -> list[tuple[str, dict]]:
    out = []
    with client.stream("GET", f"/v1/executions/{execution_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name:
                out.append((name, json.loads(line[6:])))
                if name == "end":
                    break
    return out


def test_sse_streams_live_updates_until_the_end(client: TestClient) -> None:
    deploy(client, SLOW)
    execution_id = client.post("/v1/flows/demo/slow/executions", json={"inputs": {"seconds": 0.5}}).json()["id"]
    events = _events(client, execution_id)
    names = [name for name, _ in events]
    assert names[0] == "snapshot" and names[-1] == "end"
    assert events[-1][1]["state"] == "SUCCESS"
    steps = [data for name, data in events if name == "step"]
    assert ("nap", "SUCCESS") in {(s["path"], s["state"]) for s in steps}
    assert any(name == "execution" and data["state"] == "SUCCESS" for name, data in events)

    # an ended execution: the snapshot and the end at once
    ended = _events(client, execution_id)
    assert [name for name, _ in ended] == ["snapshot", "end"]
    assert ended[0][1]["execution"]["state"] == "SUCCESS" and ended[0][1]["steps"][0]["path"] == "nap"
    assert_error(client.get("/v1/executions/nope/events"), 404, "NotFound")
