"""``hub eval`` exit codes and exports, gated promotion, production calls becoming cases (CLI and
API), all against the loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from hub.cli import main
from hub.engine.runner import Engine
from hub.evals.results import EvalStore
from hub.evals.spec import load_file
from hub.flow.loader import load_text as load_flow
from hub.llm.records import CallLog
from hub.prompts.registry import PromptRegistry, use_prompts_dir
from tests.evals.helpers import TRIAGE_EVAL, new_version, triage_answer
from tests.llm.conftest import models_for

FLOW = """\
id: triage_flow
inputs: [{id: body, type: string, required: true}]
tasks:
  - {id: triage, type: llm.chat, prompt: triage@production, vars: {body: "{{ inputs.body }}"}}
outputs: {category: "{{ outputs.triage.value.category }}"}
"""


@pytest.fixture
def env(monkeypatch, project: Path, fake, client) -> Path:
    """The CLI's environment: the project folder, its store, model aliases on the fake server."""
    fake.responder = triage_answer
    models = {name: spec.model_dump(exclude_none=True) for name, spec in models_for(fake.api_base).models.items()}
    monkeypatch.chdir(project)
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    monkeypatch.setenv("HUB_HOME", str(project / ".hub"))
    monkeypatch.setenv("HUB_PROMPTS_DIR", str(project / "prompts"))
    monkeypatch.setenv("HUB_LLM_MODELS_FILE", str(project / "none.yaml"))
    monkeypatch.setenv("HUB_LLM_MODELS", json.dumps(models))
    monkeypatch.setenv("HUB_LLM_DEFAULT_MODEL", "fast")
    monkeypatch.setenv("HUB_LLM_NUM_RETRIES", "0")
    monkeypatch.setenv("HUB_EVALS_DIR", str(project / "evals"))
    (project / "evals" / "triage.yaml").write_text(TRIAGE_EVAL)
    return project


def hub(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_hub_eval_exit_codes_table_and_exports(env, store):
    PromptRegistry(store.engine, env / "prompts").sync()
    new_version(env / "prompts")
    both = hub("eval", "evals/triage.yaml", "--json", "run.json", "--html", "report.html")
    assert both.exit_code == 1, both.output  # v1 misses the thresholds
    assert "v1 (production) × fast" in both.output and "v2 (latest) × fast" in both.output
    assert "Cases whose result differs" in both.output and "FAILED" in both.output
    document = json.loads((env / "run.json").read_text())
    assert len(document["results"]) == 10 and document["run"]["passed"] is False
    assert "<table id='summary'>" in (env / "report.html").read_text()
    only_new = hub("eval", "run", "evals/triage.yaml", "-V", "latest", "--baseline", document["run"]["id"])
    assert only_new.exit_code == 0, only_new.output
    assert "passed: thresholds met by every variant" in only_new.output
    assert f"Against baseline {document['run']['id']}" in only_new.output
    runs = EvalStore(store.engine).runs("triage")
    assert [r["passed"] for r in runs] == [True, False]
    listed = hub("eval", "list")
    assert runs[0]["id"] in listed.output and "FAILED" in listed.output
    shown = hub("eval", "show", runs[1]["id"][:10])
    assert "pass rate" in shown.output and shown.exit_code == 0
    exported = hub("eval", "export", runs[1]["id"], "--html", "again.html")
    assert exported.exit_code == 0 and "<table id='cases'>" in (env / "again.html").read_text()


def test_hub_eval_reports_file_errors_with_lines(env):
    (env / "evals" / "bad.yaml").write_text("name: bad\ntarget: {prompt: triage}\ncases:\n  - {id: a, expectd: 1}\n")
    result = CliRunner().invoke(main, ["eval", "evals/bad.yaml"])
    assert result.exit_code == 2  # the eval file is invalid: not a failed threshold
    assert "evals/bad.yaml:4:13: cases[0].expectd: unknown key 'expectd'; did you mean 'expected'?" in result.output
    assert hub("eval", "validate", "evals/triage.yaml").output.strip() == "evals/triage.yaml: ok (5 cases)"
    schema = json.loads(hub("eval", "schema").output)
    assert schema["title"] == "hub eval file"
    # files named on the command line that cannot be read or written: a message, not a traceback
    missing = CliRunner().invoke(main, ["eval", "add-case", "evals/triage.yaml", "--execution", "x", "--step", "s",
                                        "--expected", "@nowhere.json"])
    assert missing.exit_code == 1 and "error: " in missing.output and "nowhere.json" in missing.output
    assert not isinstance(missing.exception, OSError)


def test_gated_promotion_refused_then_allowed_and_recorded(env, store):
    registry = PromptRegistry(store.engine, env / "prompts")
    registry.sync()
    new_version(env / "prompts", "You triage tickets.", "You triage tickets in a hurry.")  # v2: still 'billing'
    refused = CliRunner().invoke(main, ["prompts", "promote", "triage", "2", "--label", "production",
                                        "--require-eval", "evals/triage.yaml"])
    assert refused.exit_code == 1
    assert "triage:2 did not pass evals/triage.yaml" in refused.output and "'production' stays where it was" in refused.output
    assert registry.labels("triage")["production"] == 1
    new_version(env / "prompts", "in a hurry.", "carefully.")  # v3 reads the ticket
    allowed = hub("prompts", "promote", "triage", "3", "--label", "production", "--require-eval", "evals/triage.yaml")
    assert allowed.exit_code == 0, allowed.output
    assert registry.labels("triage")["production"] == 3
    [promotion] = EvalStore(store.engine).promotions("triage")
    assert (promotion["label"], promotion["version"], promotion["previous"]) == ("production", 3, 1)
    run = EvalStore(store.engine).run(promotion["run_id"])
    # v3 ran against v1, the version production named, on the same cases
    assert run["passed"] is True and [(v["version"], v["role"]) for v in run["variants"]] == [(1, "against"), (3, "candidate")]
    assert f"eval run {run['id']} passed against v1" in allowed.output
    move = registry.history("triage")[-1]
    assert (move["version"], move["eval_run"], move["forced"]) == (3, run["id"], False)
    assert move["actor"].startswith("user:") and "against v1" in move["reason"]
    assert run["id"] in hub("eval", "promotions", "triage").output


async def _production_call(store, client, settings, body: str) -> str:
    engine = Engine(store, settings, services={"llm": client})
    with use_prompts_dir(settings.prompts_dir):
        flow = load_flow(FLOW)
    execution = await engine.execute(flow, {"body": body})
    assert execution["state"] == "SUCCESS"
    return str(execution["id"])


def test_a_production_call_becomes_a_case(env, store, client, settings):
    import asyncio

    (env / "evals" / "triage.yaml").write_text("# ticket categories\n" + TRIAGE_EVAL + "# the end\n")
    execution_id = asyncio.run(_production_call(store, client, settings, "The export crash every night"))
    added = hub("eval", "add-case", "evals/triage.yaml", "--execution", execution_id[:8], "--step", "triage",
                "--expected", '{"category": "bug"}', "--id", "export-crash", "-t", "from-prod", "--note", "misrouted")
    assert added.exit_code == 0, added.output
    [call] = CallLog(store.engine).calls(execution_id)
    assert f"added case export-crash to evals/triage.yaml (from call {call['id']})" in added.output
    text = (env / "evals" / "triage.yaml").read_text()
    assert text.startswith("# ticket categories\n") and text.endswith("# the end\n")
    case = load_file(env / "evals" / "triage.yaml").spec.cases[-1]
    assert case.id == "export-crash" and case.vars == {"body": "The export crash every night"}
    assert case.expected == {"category": "bug"} and case.tags == ["from-prod"]
    assert case.metadata["source"] == {"call_id": call["id"], "execution_id": execution_id, "step": "triage",
                                       "prompt_version": 1, "model": "fast"}
    assert case.metadata["note"] == "misrouted"
    again = CliRunner().invoke(main, ["eval", "add-case", "evals/triage.yaml", "--call", str(call["id"]), "--id", "export-crash"])
    assert again.exit_code == 1 and "already has a case 'export-crash'" in again.output
    # without --expected the model's answer is the expected output; the id is derived
    assert hub("eval", "add-case", "evals/triage.yaml", "--call", str(call["id"])).exit_code == 0
    last = load_file(env / "evals" / "triage.yaml").spec.cases[-1]
    assert last.id == f"prod-{execution_id[:8]}-triage" and last.expected == {"category": "billing", "urgency": "low"}


def test_api_runs_results_report_and_cases(env, store, client, settings):
    import asyncio

    from hub.api.app import create_app

    PromptRegistry(store.engine, env / "prompts").sync()
    new_version(env / "prompts")
    engine = Engine(store, settings, services={"llm": client})
    execution_id = asyncio.run(_production_call(store, client, settings, "Where is my invoice for March?"))
    (env / "evals" / "data.yaml").write_text("- {id: seed, vars: {body: charged twice}, expected: {category: billing}}\n")
    (env / "evals" / "with_dataset.yaml").write_text(
        "name: triage_ds\ntarget: {prompt: triage}\ndataset: data.yaml\nassert: [{type: field, path: category}]\n"
    )
    with TestClient(create_app(engine, auth="open", background=False), raise_server_exceptions=False) as api:
        waited = api.post("/v1/evals/runs", json={"file": "triage.yaml", "versions": ["latest"], "wait": True})
        assert waited.status_code == 200, waited.text
        assert waited.json()["passed"] is True
        started = api.post("/v1/evals/runs", json={"file": "triage.yaml"})
        assert started.status_code == 202
        run_id = started.json()["run_id"]
        deadline = time.monotonic() + 30
        while api.get(f"/v1/evals/runs/{run_id}").json()["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        run = api.get(f"/v1/evals/runs/{run_id}").json()
        assert run["status"] == "done" and run["passed"] is False
        assert run["summary"]["differing"] == ["crash", "error-500", "hello"]
        results = api.get(f"/v1/evals/runs/{run_id}/results", params={"variant": "v2/fast"}).json()
        assert len(results) == 5 and all(r["passed"] for r in results)
        report = api.get(f"/v1/evals/runs/{run_id}/report.html")
        assert report.headers["content-type"].startswith("text/html") and "<table id='summary'>" in report.text
        assert {r["id"] for r in api.get("/v1/evals/runs").json()} >= {run_id, waited.json()["run_id"]}
        compared = api.post("/v1/evals/runs", json={
            "file": "triage.yaml", "candidate": "latest", "against": "production", "cases": ["c*"], "wait": True,
        }).json()
        [pair] = compared["summary"]["comparison"]["pairs"]
        # only the candidate must meet the thresholds (v1, which misses them, is what it is judged against)
        assert pair["improvements"] == ["crash"] and compared["passed"] is True
        unknown = api.post("/v1/evals/runs", json={"file": "triage.yaml", "models": ["fsat"]})
        assert unknown.status_code == 422 and "unknown model alias 'fsat'" in unknown.json()["error"]["message"]
        bad = api.post("/v1/evals/runs", json={"file": "../prompts/triage.yaml"})
        assert bad.status_code == 422 and "outside the evals folder" in bad.json()["detail"]
        assert api.post("/v1/evals/runs", json={"file": "nope.yaml"}).status_code == 404
        added = api.post("/v1/evals/cases", json={
            "file": "with_dataset.yaml", "execution_id": execution_id, "step": "triage",
            "expected": {"category": "billing"}, "id": "march-invoice",
        })
        assert added.status_code == 201, added.text
        assert added.json()["file"].endswith("data.yaml")
        data = (env / "evals" / "data.yaml").read_text()
        assert data.startswith("- {id: seed,") and "- id: march-invoice" in data
        cases = load_file(env / "evals" / "with_dataset.yaml").spec.cases
        assert [c.id for c in cases] == ["seed", "march-invoice"] and cases[1].vars == {"body": "Where is my invoice for March?"}
        missing = api.post("/v1/evals/cases", json={"file": "triage.yaml", "call_id": 9999})
        assert missing.status_code == 404
