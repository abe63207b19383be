"""Eval runs on litellm's real HTTP path against the loopback OpenAI-compatible server."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from hub.evals.export import run_document, to_html, to_json
from hub.evals.report import text_table
from hub.evals.spec import load_text
from hub.llm.fake import Reply
from hub.llm.records import CallLog
from tests.evals.helpers import TRIAGE_EVAL, new_version, triage_answer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def two_versions(runner, fake, project):
    """v1 (production) always answers billing; v2 (latest) reads the ticket."""
    fake.responder = triage_answer
    runner.registry.sync()
    new_version(project / "prompts")
    return runner


def variant(summary: dict[str, Any], version: int) -> dict[str, Any]:
    return next(v for v in summary["variants"] if v["version"] == version)


async def test_two_versions_side_by_side_with_thresholds_and_differing_cases(two_versions, store):
    outcome = await two_versions.run(load_text(TRIAGE_EVAL, "evals/triage.yaml"))
    s = outcome.summary
    old, new = variant(s, 1), variant(s, 2)
    assert (old["ref"], old["labels"], new["ref"]) == ("production", ["production"], "latest")
    assert old["pass_rate"] == pytest.approx(2 / 5) and new["pass_rate"] == 1.0
    assert not old["thresholds_passed"] and new["thresholds_passed"] and outcome.passed is False
    failing = {t["name"] for t in old["thresholds"] if not t["passed"]}
    assert failing == {"pass_rate", "category.accuracy"}
    assert s["differing"] == ["crash", "error-500", "hello"]
    assert new["input_tokens"] > 0 and new["cost"] > 0 and new["latency_p95_ms"] >= new["latency_p50_ms"] > 0
    table = text_table(s)
    assert "v1 (production) × fast" in table and "v2 (latest) × fast" in table
    assert "Cases whose result differs" in table and "error-500" in table
    assert "pass_rate is 0.4, needs ≥ 0.8" in table


async def test_every_case_run_is_stored_with_its_calls(two_versions, store):
    outcome = await two_versions.run(load_text(TRIAGE_EVAL, "evals/triage.yaml"))
    results = two_versions.results.results(outcome.run_id)
    assert len(results) == 10
    crash = next(r for r in results if r["case_id"] == "crash" and r["prompt_version"] == 1)
    assert crash["passed"] is False and crash["output"] == {"category": "billing", "urgency": "low"}
    assert crash["input"] == {"body": "The app crash on start"} and crash["expected"] == {"category": "bug"}
    [check] = crash["assertions"]
    assert check["reason"] == "category is 'billing', expected 'bug'"
    # linked to the call records, which carry the prompt version that answered
    calls = CallLog(store.engine).calls(outcome.run_id)
    by_id = {c["id"]: c for c in calls}
    [call_id] = crash["call_ids"]
    assert by_id[call_id]["prompt_version"] == 1 and by_id[call_id]["path"] == "v1/fast/crash#1"
    assert by_id[call_id]["prompt_hash"] == crash["prompt_hash"]
    run = two_versions.results.run(outcome.run_id[:8])
    assert run["status"] == "done" and run["passed"] is False and run["summary"]["differing"]


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("script", "link", "img") or found.get("src") or (found.get("href") or "").startswith("http"):
            self.external.append(tag)
        if tag == "table":
            self._table = found.get("id") or f"table-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._table and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


async def test_json_and_self_contained_html_exports(two_versions, tmp_path):
    outcome = await two_versions.run(load_text(TRIAGE_EVAL, "evals/triage.yaml"))
    document = run_document(two_versions.results, outcome.run_id)
    data = json.loads(to_json(document))
    assert data["run"]["id"] == outcome.run_id and len(data["results"]) == 10
    assert data["summary"]["differing"] == ["crash", "error-500", "hello"]
    page = tmp_path / "report.html"
    page.write_text(to_html(document))
    parser = _Tables()
    parser.feed(page.read_text())
    assert parser.external == []  # nothing to fetch: one file
    summary = parser.tables["summary"]
    assert summary[0][1:] == ["v1 (production) × fast", "v2 (latest) × fast"]
    assert ["pass rate", "40.0%", "100.0%"] in summary
    assert summary[-1] == ["thresholds", "FAIL", "pass"]
    cases = {row[0]: row for row in parser.tables["cases"][1:]}
    assert cases["crash"][1].startswith("FAIL 0/1") and cases["crash"][2] == "pass 1/1" and cases["crash"][3] == "yes"
    assert cases["invoice"][3] == ""
    assert len(parser.tables["results"]) == 11
    confusion = next(rows for name, rows in parser.tables.items() if name.startswith("table-"))
    assert confusion[0][:4] == ["true \\ predicted", "billing", "bug", "other"]


async def test_baseline_comparison_lists_regressions_and_fixes(two_versions, project):
    spec = TRIAGE_EVAL.replace("versions: [production, latest]", "versions: [latest]")
    first = await two_versions.run(load_text(spec, "evals/triage.yaml"))
    new_version(project / "prompts", "You triage tickets carefully.", "You triage tickets.  ")  # v3 answers billing
    second = await two_versions.run(load_text(spec, "evals/triage.yaml"), baseline=first.run_id)
    base = second.summary["baseline"]
    assert base["run_id"] == first.run_id
    [d] = base["variants"]
    assert (d["variant"], d["baseline_variant"]) == ("v3/fast", "v2/fast")  # matched by the label 'latest'
    assert d["pass_rate"] == [1.0, pytest.approx(0.4)]
    assert d["regressions"] == ["crash", "error-500", "hello"] and d["fixed"] == []
    assert "regressions: crash, error-500, hello" in text_table(second.summary)


async def test_repeat_reports_flaky_cases(runner, fake):
    runner.registry.sync()
    answers = iter(['{"category": "billing", "urgency": "low"}', '{"category": "bug", "urgency": "low"}'])
    fake.responder = lambda request: next(answers) if "charged" in json.dumps(request) else '{"category": "bug", "urgency": "low"}'
    spec = """
name: flaky
target: {prompt: triage}
repeat: 2
concurrency: 1
assert: [{type: field, path: category}]
thresholds: {max_flaky: 0}
cases:
  - {id: charged, vars: {body: charged}, expected: {category: billing}}
  - {id: steady, vars: {body: crash}, expected: {category: bug}}
"""
    outcome = await runner.run(load_text(spec, "flaky.yaml"))
    [v] = outcome.summary["variants"]
    assert v["runs"] == 4 and v["flaky"] == ["charged"] and v["pass_rate"] == 0.75
    assert [t["name"] for t in v["thresholds"] if not t["passed"]] == ["max_flaky"]
    assert "Flaky cases (repeats disagree): charged" in text_table(outcome.summary)


async def test_models_are_compared_too(runner, fake):
    runner.registry.sync()
    fake.enqueue(*['{"category": "bug", "urgency": "low"}'] * 2, model="cheap-m")
    fake.default = Reply('{"category": "billing", "urgency": "low"}')
    spec = """
name: models
target: {prompt: triage}
models: [fast, cheap]
assert: [{type: field, path: category}]
cases:
  - {id: a, vars: {body: x}, expected: {category: billing}}
  - {id: b, vars: {body: y}, expected: {category: billing}}
"""
    outcome = await runner.run(load_text(spec, "m.yaml"))
    rates = {v["key"]: v["pass_rate"] for v in outcome.summary["variants"]}
    assert rates == {"v1/fast": 1.0, "v1/cheap": 0.0}
    assert {r["model"] for r in fake.requests} == {"gpt-4o-mini", "cheap-m"}


async def test_a_failing_call_is_a_failed_case_with_its_error(runner, fake):
    runner.registry.sync()
    fake.default = Reply("not json at all")
    spec = """
name: broken
target: {prompt: triage}
max_repairs: 1
assert: [{type: field, path: category}]
thresholds: {max_errors: 0}
cases: [{id: a, vars: {body: x}, expected: {category: billing}}]
"""
    outcome = await runner.run(load_text(spec, "b.yaml"))
    [row] = runner.results.results(outcome.run_id)
    assert row["passed"] is False and row["error"]["type"] == "OutputInvalid"
    assert len(row["call_ids"]) == 2  # the question and one repair, both recorded
    assert row["assertions"][0]["reason"].startswith("no output:")
    assert outcome.summary["variants"][0]["errors"] == 1 and not outcome.passed


async def test_judge_and_embeddings_go_through_the_loopback_server(runner, fake):
    runner.registry.sync()
    fake.responder = triage_answer
    spec = """
name: models_checks
target: {prompt: triage}
judge_model: judge
embedding_model: embed
assert:
  - {type: llm_rubric, rubric: The answer names a ticket category., threshold: 0.5}
  - {type: similar, path: category, value: "billing", threshold: 0.99}
  - {type: similar, path: category, value: "a bug report", threshold: 0.9, negate: true}
cases:
  - {id: a, vars: {body: I was charged twice}}
"""
    outcome = await runner.run(load_text(spec, "j.yaml"))
    [row] = runner.results.results(outcome.run_id)
    judge, same, different = row["assertions"]
    assert judge["passed"] and judge["score"] == 0.9 and judge["reason"] == "judge: names a category"
    assert same["passed"] and same["score"] == pytest.approx(1.0)
    assert different["passed"] and "negated" in different["reason"]
    judged = [r for r in fake.requests if r["model"] == "judge-m"]
    assert judged and "The answer names a ticket category." in judged[0]["messages"][1]["content"]
    assert '"pass"' in judged[0]["messages"][0]["content"]  # the verdict's schema was asked for
    assert {r["model"] for r in fake.embedding_requests} == {"text-embedding-3-small"}
    calls = {c["id"]: c for c in CallLog(runner.store.engine).calls(outcome.run_id)}
    paths = sorted(calls[i]["path"] for i in row["call_ids"])
    assert paths == ["v1/fast/a#1", "v1/fast/a#1/judge", "v1/fast/a#1/similar", "v1/fast/a#1/similar"]


async def test_classification_metrics_over_the_dataset(runner, fake):
    runner.registry.sync()
    predicted = {"t1": "billing", "t2": "billing", "t3": "bug", "t4": "billing", "t5": "other", "t6": "bug"}
    fake.responder = lambda r: json.dumps({"category": predicted[r["messages"][-1]["content"].split()[-1]], "urgency": "low"})
    spec = """
name: cls
target: {prompt: triage}
concurrency: 3
metrics: [{type: classification, name: category, path: category, labels: [billing, bug, other]}]
thresholds: {metrics: {category.accuracy: 0.6, category.recall.bug: 0.6}}
cases:
  - {vars: {body: t1}, expected: {category: billing}}
  - {vars: {body: t2}, expected: {category: billing}}
  - {vars: {body: t3}, expected: {category: bug}}
  - {vars: {body: t4}, expected: {category: bug}}
  - {vars: {body: t5}, expected: {category: bug}}
  - {vars: {body: t6}, expected: {category: other}}
"""
    outcome = await runner.run(load_text(spec, "c.yaml"))
    [v] = outcome.summary["variants"]
    m = v["metrics"]["category"]
    assert m["samples"] == 6 and m["accuracy"] == pytest.approx(3 / 6)
    assert m["confusion"] == {
        "billing": {"billing": 2, "bug": 0, "other": 0},
        "bug": {"billing": 1, "bug": 1, "other": 1},
        "other": {"billing": 0, "bug": 1, "other": 0},
    }
    assert m["labels"]["billing"]["precision"] == pytest.approx(2 / 3) and m["labels"]["billing"]["recall"] == 1.0
    assert m["labels"]["bug"]["precision"] == pytest.approx(1 / 2) and m["labels"]["bug"]["recall"] == pytest.approx(1 / 3)
    assert m["labels"]["other"]["precision"] == 0.0 and m["labels"]["other"]["support"] == 1
    assert {t["name"]: t["passed"] for t in v["thresholds"]} == {"category.accuracy": False, "category.recall.bug": False}


async def test_a_flow_target_runs_executions_with_the_compared_version(runner, fake, project, settings, store):
    from hub.prompts.registry import use_prompts_dir

    fake.responder = triage_answer
    (project / "flows").mkdir()
    (project / "flows" / "triage_flow.yaml").write_text("""\
id: triage_flow
inputs: [{id: body, type: string, required: true}]
tasks:
  - {id: triage, type: llm.chat, prompt: triage@production, vars: {body: "{{ inputs.body }}"}}
outputs: {category: "{{ outputs.triage.value.category }}", version: "{{ outputs.triage.prompt.version }}"}
""")
    runner.registry.sync()
    new_version(project / "prompts")
    spec = """
name: flow_eval
target: {flow: ../flows/triage_flow.yaml, prompt: triage}
versions: [production, latest]
assert: [{type: field, path: category}]
cases:
  - {id: crash, inputs: {body: The app crash on start}, expected: {category: bug}}
"""
    with use_prompts_dir(project / "prompts"):
        outcome = await runner.run(load_text(spec, str(project / "evals" / "flow_eval.yaml")))
    rows = {r["prompt_version"]: r for r in runner.results.results(outcome.run_id)}
    assert rows[1]["output"] == {"category": "billing", "version": 1} and not rows[1]["passed"]
    assert rows[2]["output"] == {"category": "bug", "version": 2} and rows[2]["passed"]
    execution = store.get_execution(rows[2]["execution_id"])
    assert execution["flow_id"] == "triage_flow" and execution["state"] == "SUCCESS"
    [call] = CallLog(store.engine).calls(rows[2]["execution_id"])
    assert rows[2]["call_ids"] == [call["id"]] and call["prompt_version"] == 2
    assert outcome.summary["differing"] == ["crash"]
    assert Path(project / "evals").is_dir()


async def test_a_flow_case_asserts_on_the_trajectory(runner, fake, project, store):
    """Steps that ran, tool calls found in step outputs (an agent step's ``tool_calls``), model
    turns, an approval asked (the execution pauses: a trajectory, not an error)."""
    from hub.prompts.registry import use_prompts_dir

    fake.responder = triage_answer
    (project / "flows").mkdir()
    (project / "flows" / "triage_flow.yaml").write_text("""\
id: triage_flow
inputs: [{id: body, type: string, required: true}]
tasks:
  - {id: triage, type: llm.chat, prompt: triage@production, vars: {body: "{{ inputs.body }}"}}
  - id: plan
    type: set
    values:
      tool_calls:
        - {name: lookup_order, arguments: {order_id: A-17}}
        - {function: {name: notify, arguments: '{"channel": "#ops"}'}}
  - id: review
    type: approval
    if: "{{ outputs.triage.value.category == 'bug' }}"
    message: "A bug: {{ inputs.body }}"
    approvers: [ana@example.com]
outputs: {category: "{{ outputs.triage.value.category }}"}
""")
    runner.registry.sync()
    new_version(project / "prompts")
    spec = """
name: flow_eval
target: {flow: ../flows/triage_flow.yaml, prompt: triage}
versions: [latest]
assert:
  - type: trajectory
    steps: [triage, plan]
    max_turns: 1
    tool_calls:
      - {name: lookup_order, arguments: {type: object, required: [order_id], properties: {order_id: {type: string, pattern: "^A-"}}}}
      - {name: notify, arguments: {type: object, properties: {channel: {const: "#ops"}}}, max: 1}
      - {name: refund, min: 0, max: 0}
cases:
  - {id: crash, inputs: {body: The app crash on start}, assert: [{type: trajectory, approval: true}]}
  - {id: invoice, inputs: {body: Where is my invoice}, assert: [{type: trajectory, approval: true}]}
  - {id: wrong-order, inputs: {body: charged twice}, assert: [{type: trajectory, steps: [plan, triage]}]}
"""
    with use_prompts_dir(project / "prompts"):
        outcome = await runner.run(load_text(spec, str(project / "evals" / "flow_eval.yaml")))
    rows = {r["case_id"]: r for r in runner.results.results(outcome.run_id)}
    assert rows["crash"]["passed"], rows["crash"]["assertions"]
    assert rows["crash"]["error"] is None and store.get_execution(rows["crash"]["execution_id"])["state"] == "PAUSED"
    assert rows["crash"]["assertions"][0]["reason"].startswith("3 steps, 1 turns, 2 tool calls")
    assert rows["invoice"]["assertions"][0]["reason"].startswith("2 steps")  # the review step was skipped
    invoice = rows["invoice"]["assertions"]
    assert invoice[0]["passed"] and invoice[1]["reason"] == "no approval was requested"
    wrong = rows["wrong-order"]["assertions"][1]
    assert not wrong["passed"] and "steps ['plan', 'triage'] did not run in that order" in wrong["reason"]
