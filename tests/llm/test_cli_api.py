"""The prompts CLI group and the /v1/prompts API, on a real store."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.llm.records import CallLog
from hub.prompts.cli import prompts as prompts_cli
from hub.testing import make_engine


@pytest.fixture
def cli(tmp_path: Path, prompts: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("HUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HUB_PROMPTS_DIR", str(prompts))
    return CliRunner()


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(prompts_cli, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_cli_sync_list_show_label_promote_diff(cli, prompts):
    assert "triage: version 1 (new)" in run(cli, "sync")
    assert "production=v1" in run(cli, "list")
    path = prompts / "triage.yaml"
    path.write_text(path.read_text().replace("You triage tickets.", "You triage tickets, v2."))
    assert "triage: version 2 (new)" in run(cli, "sync", "-m", "clearer")
    shown = run(cli, "show", "triage")
    assert "v1" in shown and "production" in shown and "clearer" in shown
    assert "You triage tickets, v2." in run(cli, "show", "triage", "latest")
    assert run(cli, "label", "triage", "2", "staging").strip() == "triage@staging -> v2"
    # production is protected: a plain move is refused, a forced one needs a reason and is audited
    refused = run(cli, "promote", "triage", code=1)
    assert "'production' is a protected label" in refused and "--require-eval" in refused
    assert "needs --reason" in run(cli, "promote", "triage", "--force", code=1)
    forced = run(cli, "promote", "triage", "--force", "--reason", "hotfix for the outage")
    assert forced.strip() == "triage@production -> v2 (was v1)"
    out = run(cli, "diff", "triage", "1", "2")
    assert "-    content: You triage tickets." in out and "+    content: You triage tickets, v2." in out
    history = run(cli, "history", "triage")
    assert "production -> v2 (was v1)  by user:" in history and "FORCED" in history and "hotfix for the outage" in history
    assert "staging -> v2  by user:" in history


def test_cli_errors_say_what_to_do(cli):
    run(cli, "sync")
    assert "no label 'canary'" in run(cli, "promote", "triage", "--from", "canary", code=1)
    assert "there is no prompt 'nope'" in run(cli, "show", "nope", code=1)
    assert "cannot be moved" in run(cli, "label", "triage", "1", "latest", code=1)


@pytest.fixture
def api(store, prompts, tmp_path):
    engine = make_engine(store, home=tmp_path / "home", prompts_dir=prompts)
    with TestClient(create_app(engine, auth="open", background=False), raise_server_exceptions=False) as client:
        client.engine = engine  # type: ignore[attr-defined]
        yield client


def test_api_prompts(api, prompts):
    synced = api.post("/v1/prompts/sync", json={"message": "initial"}).json()
    assert {s["name"] for s in synced} == {"triage", "support_triage", "lead_qualifier"}
    listed = {p["name"]: p for p in api.get("/v1/prompts").json()}
    assert listed["triage"]["labels"] == {"production": 1}
    path = prompts / "triage.yaml"
    path.write_text(path.read_text().replace("You triage tickets.", "v2 system"))
    api.post("/v1/prompts/sync")
    detail = api.get("/v1/prompts/triage").json()
    assert [v["version"] for v in detail["versions"]] == [1, 2]
    assert api.get("/v1/prompts/triage/versions/latest").json()["spec"]["messages"][0]["content"] == "v2 system"
    assert "+    content: v2 system" in api.get("/v1/prompts/triage/diff", params={"a": 1}).json()["diff"]
    assert api.put("/v1/prompts/triage/labels/staging", json={"version": 2}).json()["version"] == 2
    refused = api.post("/v1/prompts/triage/promote", json={"from": "staging"})
    assert refused.status_code == 409 and "protected label" in refused.json()["error"]["message"]
    bad_evidence = api.put("/v1/prompts/triage/labels/production", json={"version": 2, "eval_run": "ev_nope"})
    assert bad_evidence.status_code == 409 and "no eval run" in bad_evidence.json()["error"]["message"]
    promoted = api.post("/v1/prompts/triage/promote", json={"from": "staging", "force": True, "reason": "rollback drill"}).json()
    assert (promoted["version"], promoted["previous"]) == (2, 1)
    history = api.get("/v1/prompts/triage/history").json()
    assert len(history) == 3
    assert {k: history[-1][k] for k in ("label", "version", "actor", "reason", "forced", "eval_run")} == {
        "label": "production", "version": 2, "actor": "key:anonymous", "reason": "rollback drill", "forced": True,
        "eval_run": None,
    }


def test_api_errors(api):
    api.post("/v1/prompts/sync")
    missing = api.get("/v1/prompts/nope")
    assert missing.status_code == 404 and "there is no prompt 'nope'" in missing.json()["detail"]
    assert api.get("/v1/prompts/triage/versions/7").status_code == 404
    assert api.put("/v1/prompts/triage/labels/latest", json={"version": 1}).status_code == 422
    assert api.get("/v1/executions/nope/llm").status_code == 404


def test_api_execution_llm_calls(api):
    store = api.engine.store
    execution = store.create_execution(namespace="default", flow_id="x", revision=1, inputs={}, state="SUCCESS")
    log = CallLog(store.engine)
    log.record(execution_id=execution, path="a", status="ok", model="fast", input_tokens=3, output_tokens=2, cost=0.5)
    log.record(execution_id=execution, path="b", status="ok", model="fast", input_tokens=1, output_tokens=1, cost=0.25)
    body = api.get(f"/v1/executions/{execution}/llm").json()
    assert body["totals"] == {"calls": 2, "input_tokens": 4, "output_tokens": 3, "cost": 0.75}
    assert [c["path"] for c in body["calls"]] == ["a", "b"]
