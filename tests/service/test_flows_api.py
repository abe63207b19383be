"""Flows over the API: create/update from YAML, validate with locations, revisions, diff,
disable, delete, deploy a folder."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from hub.engine.runner import Engine
from tests.service.conftest import HELLO, YAML, assert_error, deploy, make_client


def test_create_update_get_and_diff(client: TestClient) -> None:
    first = deploy(client)
    assert (first["namespace"], first["id"], first["revision"], first["created"]) == ("demo", "hello", 1, True)
    assert first["inputs"] == [{"id": "name", "type": "string", "required": False, "default": "world"}]

    same = client.post("/v1/flows", content=HELLO, headers=YAML)
    assert same.status_code == 200 and same.json()["created"] is False and same.json()["revision"] == 1

    changed = HELLO.replace("hi {{", "hello {{")
    second = client.put("/v1/flows/demo/hello", content=changed, headers=YAML).json()
    assert second["revision"] == 2 and [r["revision"] for r in second["revisions"]] == [1, 2]

    listed = client.get("/v1/flows").json()
    assert [(f["namespace"], f["id"], f["revision"]) for f in listed] == [("demo", "hello", 2)]
    assert listed[0]["description"] == "Greets someone in two steps."

    old = client.get("/v1/flows/demo/hello", params={"revision": 1}).json()
    assert old["revision"] == 1 and "hi {{" in old["source"]

    diff = client.get("/v1/flows/demo/hello/diff", params={"from": 1, "to": 2}).json()
    assert diff["from_revision"] == 1 and diff["to_revision"] == 2
    assert "--- demo.hello@1" in diff["diff"] and "+++ demo.hello@2" in diff["diff"]
    assert '-  - {id: greet, type: set, values: {greeting: "hi {{ inputs.name }}"}}' in diff["diff"]
    assert '+  - {id: greet, type: set, values: {greeting: "hello {{ inputs.name }}"}}' in diff["diff"]

    assert [r["revision"] for r in client.get("/v1/flows/demo/hello/revisions").json()] == [1, 2]
    assert_error(client.get("/v1/flows/demo/hello/diff", params={"from": 7}), 404, "NotFound")


def test_invalid_flow_is_422_with_every_location(client: TestClient) -> None:
    bad = "id: broken\ntasks:\n  - {id: a, type: sett}\n  - {id: b, type: log, mesage: hi}\n"
    error = assert_error(client.post("/v1/flows", content=bad, headers=YAML), 422, "FlowError")
    paths = {d["path"]: d for d in error["details"]}
    assert paths["tasks[0].type"]["line"] == 3 and "did you mean 'set'" in paths["tasks[0].type"]["message"]
    assert "tasks[1].mesage" in paths and paths["tasks[1].mesage"]["line"] == 4

    result = client.post("/v1/flows/validate", content=bad, headers=YAML).json()
    assert result["valid"] is False and len(result["errors"]) == 2
    assert client.get("/v1/flows").json() == []  # nothing was saved

    ok = client.post("/v1/flows/validate", content=HELLO, headers=YAML).json()
    assert ok == {"valid": True, "flow": "demo.hello", "errors": []}
    assert client.get("/v1/flows").json() == []

    mismatch = client.put("/v1/flows/demo/other", content=HELLO, headers=YAML)
    assert_error(mismatch, 422, "FlowError")
    assert_error(client.post("/v1/flows", content=b"", headers=YAML), 400, "BadRequest")
    assert_error(client.post("/v1/flows", content=b"\xff\xfe", headers=YAML), 400, "BadRequest")
    assert_error(client.post("/v1/flows", content="- just\n- a list\n", headers=YAML), 422, "FlowError")


def test_disable_enable_delete(client: TestClient) -> None:
    deploy(client)
    assert client.post("/v1/flows/demo/hello/disable").json()["disabled"] is True
    assert_error(client.post("/v1/flows/demo/hello/executions", json={}), 409, "FlowDisabled")
    assert_error(client.post("/v1/enrich/demo/hello", json={}), 409, "FlowDisabled")
    # a new revision of a disabled flow stays disabled
    assert deploy(client, HELLO.replace("hi {{", "yo {{"))["disabled"] is True
    assert client.post("/v1/flows/demo/hello/enable").json()["disabled"] is False
    assert client.post("/v1/flows/demo/hello/executions", json={}).status_code == 201

    assert client.delete("/v1/flows/demo/hello").status_code == 204
    assert_error(client.get("/v1/flows/demo/hello"), 404, "NotFound")
    assert_error(client.delete("/v1/flows/demo/hello"), 404, "NotFound")
    assert client.get("/v1/flows").json() == []
    again = deploy(client)  # re-created after a delete: a new revision
    assert again["revision"] == 3 and again["created"] is True


def test_deploy_folder_is_all_or_nothing(client: TestClient) -> None:
    other = HELLO.replace("id: hello", "id: other")
    bad = "id: bad\ntasks:\n  - {id: a, type: nope}\n"
    response = client.post("/v1/flows/deploy", json={"flows": [
        {"file": "flows/hello.yaml", "source": HELLO}, {"file": "flows/bad.yaml", "source": bad}]})
    error = assert_error(response, 422, "FlowError")
    assert error["details"][0]["file"] == "flows/bad.yaml" and error["details"][0]["line"] == 3
    assert client.get("/v1/flows").json() == []

    ok = client.post("/v1/flows/deploy", json={"flows": [
        {"file": "flows/hello.yaml", "source": HELLO}, {"file": "flows/other.yaml", "source": other}]})
    assert ok.status_code == 200
    assert [(f["id"], f["created"]) for f in ok.json()["flows"]] == [("hello", True), ("other", True)]

    dup = client.post("/v1/flows/deploy", json={"flows": [
        {"file": "a.yaml", "source": HELLO}, {"file": "b.yaml", "source": HELLO}]})
    assert "also defined in a.yaml" in assert_error(dup, 422)["details"][0]["message"]


def test_a_flow_disabled_through_the_api_stays_disabled_when_serve_loads_a_new_revision(
    engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "hello.yaml").write_text(HELLO)
    with make_client(engine, auth="open", flows_dir=folder) as first:
        assert first.post("/v1/flows/demo/hello/disable").json()["disabled"] is True
    (folder / "hello.yaml").write_text(HELLO.replace("hi {{", "yo {{"))
    with make_client(engine, auth="open", flows_dir=folder) as restarted:  # hub serve starts again
        flow = restarted.get("/v1/flows/demo/hello").json()
        assert flow["revision"] == 2 and flow["disabled"] is True
        assert_error(restarted.post("/v1/flows/demo/hello/executions", json={}), 409, "FlowDisabled")
