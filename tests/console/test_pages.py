"""The console's pages over HTTP (SQLite and PostgreSQL): what each page shows, the editor's
located errors and revisions, the run form, the executions list's filters and paging, actions."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from hub.engine.runner import Engine
from tests.console.conftest import GREET, YAML, csrf, deploy, text_of, wait_state

BROKEN = GREET.replace("type: set", "type: sett", 1)


def start(client: TestClient, flow: str, inputs: dict[str, object]) -> str:
    response = client.post(f"/v1/flows/{flow}/executions", json={"inputs": inputs})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_root_opens_the_flows_list_with_last_state_and_triggers(client: TestClient, engine: Engine) -> None:
    deploy(client, GREET)
    deploy(client, "id: nightly\nnamespace: ops\ntriggers:\n  - {id: every_night, type: schedule, cron: '0 2 * * *'}\n"
                   "tasks:\n  - {id: a, type: log, message: hi}\n")
    done = wait_state(engine, start(client, "demo/greet", {"name": "ana"}), {"SUCCESS", "FAILED"})
    assert done["state"] == "SUCCESS", done["error"]

    assert client.get("/").headers["location"] == "/flows"
    page = text_of(client.get("/flows").text)
    assert "greet Greets someone a few times. 1 SUCCESS" in page and "demo Flow Description" in page
    assert "nightly 1 never run every_night · schedule" in page


def test_a_flow_page_shows_graph_source_inputs_revisions_and_executions(client: TestClient, engine: Engine) -> None:
    deploy(client, GREET)
    execution_id = start(client, "demo/greet", {"name": "ana"})
    wait_state(engine, execution_id, {"SUCCESS"})
    html = client.get("/flows/demo/greet").text
    # the topology: the if holds two lanes with their own steps
    assert re.search(r'data-path="shout".*?then.*?data-path="shout\.upper".*?else.*?data-path="shout\.quiet"', html, re.S)
    assert 'class="line" id="L1"' in html and '<span class="nt">id</span>' in html  # highlighted YAML, numbered
    page = text_of(html)
    assert "times int no 2" in page and "tone enum (warm, dry)" in page
    assert execution_id[:12] in page and "Revisions" in page
    assert client.get("/flows/demo/nope").status_code == 404
    assert "flow demo.nope not found" in text_of(client.get("/flows/demo/nope").text)


def test_the_editor_locates_mistakes_and_saves_a_new_revision(client: TestClient) -> None:
    deploy(client, GREET)
    token = csrf(client)
    checked = client.post("/flows/-/validate", content=BROKEN, headers={**YAML, "X-CSRF-Token": token}).json()
    assert checked["valid"] is False
    [problem] = checked["errors"]
    assert (problem["line"], problem["column"], problem["path"]) == (11, 11, "tasks[0].type")
    assert problem["message"] == "unknown task type 'sett'; did you mean 'set'?"
    assert client.post("/flows/-/validate", content=GREET, headers={"X-CSRF-Token": token}).json() == {
        "valid": True, "flow": "demo.greet", "errors": []}
    assert client.post("/flows/-/validate", content=GREET).status_code == 403  # no CSRF token

    refused = client.post("/flows/-/save", data={"csrf": token, "source": BROKEN})
    assert refused.status_code == 422
    assert "line 11, column 11 tasks[0].type: unknown task type 'sett'; did you mean 'set'?" in text_of(refused.text)
    assert [r["revision"] for r in client.get("/v1/flows/demo/greet/revisions").json()] == [1]

    changed = GREET.replace("Greets someone a few times.", "Greets someone warmly.")
    saved = client.post("/flows/-/save", data={"csrf": token, "source": changed})
    assert saved.status_code == 303 and saved.headers["location"] == "/flows/demo/greet?saved=revision+2"
    assert "Saved as revision 2." in text_of(client.get(saved.headers["location"]).text)
    diff = client.get("/flows/demo/greet/diff", params={"from": 1, "to": 2}).text
    assert '<span class="d del">-description: Greets someone a few times.' in diff
    assert '<span class="d add">+description: Greets someone warmly.' in diff
    same = client.post("/flows/-/save", data={"csrf": token, "source": changed})
    assert same.headers["location"].endswith("saved=unchanged")


def test_the_run_form_follows_the_typed_inputs_and_starts_an_execution(client: TestClient, engine: Engine) -> None:
    deploy(client, GREET)
    form = client.get("/flows/demo/greet/run").text
    assert '<input type="number" step="1" id="input.times" name="input.times" value="2"' in form
    assert 'type="checkbox" id="input.loud"' in form
    assert re.search(r'<select id="input.tone"[^>]*>.*<option selected>warm</option><option >dry</option>', form)
    assert 'id="input.name" name="input.name" value="" style="width:100%" required' in form

    token = csrf(client)
    bad = client.post("/flows/demo/greet/run", data={"csrf": token, "input.name": "ana", "input.times": "many",
                                                    "input.loud.present": "1"})
    assert bad.status_code == 422
    assert "times:" in text_of(bad.text) and "(type int, got 'many')" in text_of(bad.text)
    assert engine.store.list_executions() == []

    ran = client.post("/flows/demo/greet/run", data={"csrf": token, "input.name": "ana", "input.times": "3",
                                                    "input.loud.present": "1", "input.loud": "true",
                                                    "input.tone": "dry", "labels": "team=ops"})
    assert ran.status_code == 303
    execution_id = ran.headers["location"].rsplit("/", 1)[1]
    done = wait_state(engine, execution_id, {"SUCCESS", "FAILED"})
    assert done["state"] == "SUCCESS" and done["inputs"] == {"name": "ana", "times": 3, "loud": True, "tone": "dry"}
    assert done["labels"] == {"team": "ops"}
    page = text_of(client.get(f"/executions/{execution_id}").text)
    assert "SUCCESS" in page and "HELLO ANA X3 (DRY)" in page  # the log line of the branch taken
    assert '"text": "hello ana x3 (dry)"' in page  # outputs
    html = client.get(f"/executions/{execution_id}/live").text
    # a Gantt row per step, indented under its control step
    assert re.findall(r'class="name" style="padding-left:([\d.]+)rem" title="(\w+) \(\w+\)"', html) == [
        ("0.0", "hello"), ("0.0", "shout"), ("0.8", "upper")]
    assert 'class="bar SUCCESS"' in html


def test_the_executions_list_filters_and_pages_by_cursor(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_CONSOLE_PAGE_SIZE", "10")
    deploy(client, GREET)
    store = engine.store
    ids = [store.create_execution(namespace="demo", flow_id="greet", revision=1, inputs={}, state=state,
                                  labels={"batch": "a" if n % 2 else "b"})
           for n, state in enumerate(["SUCCESS", "FAILED", "SUCCESS"] * 8 + ["QUEUED"])]
    seen: list[str] = []
    url = "/executions"
    while url:
        html = client.get(url).text
        seen += re.findall(r'href="/executions/([0-9a-f]{32})"', html)
        found = re.search(r'href="\?([^"]*before=[^"]+)" rel="next"', html)
        url = "/executions?" + found[1].replace("&amp;", "&") if found else ""
    assert len(seen) == 25 and set(seen) == set(ids)
    failed = client.get("/executions", params={"state": "FAILED", "label": "batch:a"}).text
    wanted = {i for i in ids if (row := store.get_execution(i))["state"] == "FAILED" and row["labels"]["batch"] == "a"}
    assert set(re.findall(r'href="/executions/([0-9a-f]{32})"', failed)) == wanted and len(wanted) == 4
    assert "QUEUED" not in text_of(failed).split("Labels", 1)[1]
    assert len(re.findall(r'href="/executions/[0-9a-f]{32}"',
                          client.get("/executions", params={"flow": "demo.greet", "state": "QUEUED"}).text)) == 1
    assert "No executions match." in text_of(client.get("/executions", params={"since": "2999-01-01T00:00:00Z"}).text)
    bad = client.get("/executions", params={"state": "DONE"})
    assert bad.status_code == 400 and "unknown state 'DONE'" in text_of(bad.text)
    assert client.get("/executions", params={"since": "yesterday"}).status_code == 400


FAILS = """\
id: flaky
namespace: demo
tasks:
  - {id: prepare, type: set, values: {x: 1}}
  - {id: call, type: fail, message: "upstream said no"}
"""


def test_actions_restart_and_replay_need_the_run_scope_and_a_csrf_token(client: TestClient, engine: Engine) -> None:
    deploy(client, FAILS)
    execution_id = start(client, "demo/flaky", {})
    assert wait_state(engine, execution_id, {"FAILED"})["state"] == "FAILED"
    page = text_of(client.get(f"/executions/{execution_id}").text)
    assert "FailTask : upstream said no" in page and "Restart from the failed step" in page
    assert client.post(f"/executions/{execution_id}/restart", data={}).status_code == 403

    token = csrf(client)
    restarted = client.post(f"/executions/{execution_id}/restart", data={"csrf": token})
    assert restarted.status_code == 303
    wait_state(engine, execution_id, {"FAILED"})
    attempts = [s["attempt"] for s in engine.store.step_runs(execution_id) if s["path"] == "call"]
    assert attempts == [1, 2]
    assert "call ×2" in text_of(client.get(f"/executions/{execution_id}/live").text)

    replayed = client.post(f"/executions/{execution_id}/replay", data={"csrf": token, "from_step": "call"})
    new_id = replayed.headers["location"].split("/")[2].split("?")[0]
    assert new_id != execution_id
    copy = wait_state(engine, new_id, {"FAILED"})
    assert copy["trigger"]["type"] == "replay" and copy["restarted_from"] == execution_id
    missing = client.post(f"/executions/{execution_id}/replay", data={"csrf": token, "from_step": "nope"})
    assert missing.status_code == 404 and "no top-level step 'nope'" in text_of(missing.text)


def test_a_waiting_execution_is_killed_from_its_page(client: TestClient, engine: Engine) -> None:
    deploy(client, "id: slow\nnamespace: demo\ntasks:\n  - {id: nap, type: wait, duration: 1h}\n")
    execution_id = start(client, "demo/slow", {})
    assert wait_state(engine, execution_id, {"PAUSED"})["state"] == "PAUSED"
    html = client.get(f"/executions/{execution_id}").text
    assert 'action="/executions/' + execution_id + '/kill"' in html and 'class="bar pause"' in html
    killed = client.post(f"/executions/{execution_id}/kill", data={"csrf": csrf(client)})
    assert killed.status_code == 303
    assert wait_state(engine, execution_id, {"KILLED"})["state"] == "KILLED"
    assert "Done: killed." in text_of(client.get(killed.headers["location"]).text)


def test_api_docs_are_served_from_packaged_files(client: TestClient) -> None:
    for page, assets in (("/docs", ["swagger-ui.css", "swagger-ui-bundle.js"]), ("/redoc", ["redoc.standalone.js"])):
        response = client.get(page)
        assert "default-src 'self'" in response.headers["content-security-policy"]
        html = response.text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/console-static/") for s in sources), sources
        for asset in assets:
            served = client.get(f"/console-static/api/{asset}")
            assert served.status_code == 200 and len(served.content) > 100_000
    assert client.get("/console-static/api-docs.js").headers["content-type"].startswith(("text/javascript",
                                                                                           "application/javascript"))
    assert client.get("/console-static/../settings.py").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "hub"
