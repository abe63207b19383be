"""Candidate against production, the eval cache, accounting and preflight, on the loopback
OpenAI-compatible server answering from the prompt (v1 always says 'billing', a version whose
system message says 'carefully' reads the ticket, one that says 'in a hurry' says 'bug')."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from hub.evals.junit import to_junit
from hub.evals.preflight import EvalReferenceError
from hub.evals.report import text_table
from hub.evals.runner import Selection
from hub.evals.spec import load_text
from hub.prompts.registry import Move
from tests.evals.helpers import TRIAGE_EVAL, new_version, triage_answer, user_text

pytestmark = pytest.mark.anyio

GATED = TRIAGE_EVAL.replace("thresholds:\n  pass_rate: 0.8", "gates: {max_regressions: 0}\nthresholds:\n  pass_rate: 0.4")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def hurried(request: dict[str, Any]) -> str | None:
    """The prompt-aware stand-in: 'in a hurry' answers 'bug' whatever the ticket says."""
    system = "\n".join(str(m.get("content", "")) for m in request["messages"] if m["role"] == "system")
    if "in a hurry" in system:
        return json.dumps({"category": "bug", "urgency": "low"})
    return triage_answer(request)


@pytest.fixture
def versions(runner, fake, project):
    """v1 (production): always billing; v2: reads the ticket; v3: always bug."""
    fake.responder = hurried
    runner.registry.sync()
    new_version(project / "prompts")
    runner.registry.sync()
    new_version(project / "prompts", "carefully.", "in a hurry.")
    runner.registry.sync()
    return runner


async def test_candidate_against_production_reports_improvements_with_an_interval(versions, fake):
    loaded = load_text(GATED, "evals/triage.yaml")
    outcome = await versions.run(loaded, compare=("2", "production"), select=Selection(repeat=2))
    comparison = outcome.summary["comparison"]
    assert (comparison["candidate"]["version"], comparison["against"]["version"]) == (2, 1)
    [pair] = comparison["pairs"]
    assert pair["pass_rate"] == [pytest.approx(0.4), 1.0] and pair["pass_rate_delta"] == pytest.approx(0.6)
    assert pair["regressions"] == [] and pair["improvements"] == ["crash", "error-500", "hello"]
    crash = next(c for c in pair["cases"] if c["case_id"] == "crash")
    assert crash["change"] == "improvement" and crash["pass_rate"] == [0.0, 1.0] and crash["score_delta"] == 1.0
    assert pair["accuracy"]["category"] == [pytest.approx(0.4), 1.0]
    # cost and latency side by side; the interval of the pass-rate difference excludes 0
    assert pair["cost"][0] > 0 and pair["cost"][1] > 0 and pair["latency_p95_ms"][1] > 0
    low, high = pair["interval"]
    assert 0 < low <= 0.6 <= high and pair["significant"] and pair["repeat"] == 2
    assert outcome.passed and pair["passed"]
    table = text_table(outcome.summary)
    assert "Candidate v2 against v1 (production)" in table and "improvements: crash, error-500, hello" in table
    assert "95% bootstrap interval" in table and "verdict: pass" in table


async def test_a_regression_against_production_fails_the_gate(versions):
    versions.registry.set_label("triage", "production", 2, Move(actor="test", reason="setup"))
    loaded = load_text(GATED, "evals/triage.yaml")
    outcome = await versions.run(loaded, compare=("3", "production"))
    [pair] = outcome.summary["comparison"]["pairs"]
    assert pair["regressions"] == ["charged-twice", "invoice", "hello"] and pair["improvements"] == []
    failed = {g["name"]: g for g in pair["gates"] if not g["passed"]}
    assert set(failed) == {"pass_rate_delta", "regressions"} and failed["regressions"]["value"] == 3
    assert not outcome.passed
    assert "gate missed: regressions is 3, needs ≤ 0" in text_table(outcome.summary)


async def test_the_same_eval_twice_asks_the_models_once(versions, fake):
    loaded = load_text(TRIAGE_EVAL, "evals/triage.yaml")
    first = await versions.run(loaded, versions=["1", "2"])
    asked = len(fake.requests)
    assert asked == 10
    second = await versions.run(loaded, versions=["1", "2"])
    assert len(fake.requests) == asked  # zero model requests the second time
    rows = versions.results.results(second.run_id)
    assert all(r["cached"] and r["spent"] == 0 for r in rows)
    again = {v["key"]: v for v in second.summary["variants"]}
    for v in first.summary["variants"]:  # the same numbers: cost and latency as measured when first asked
        assert again[v["key"]]["pass_rate"] == v["pass_rate"]
        assert again[v["key"]]["cost"] == pytest.approx(v["cost"])
        assert again[v["key"]]["latency_p50_ms"] == pytest.approx(v["latency_p50_ms"])
        assert again[v["key"]]["cached"] == 5 and again[v["key"]]["spent"] == 0
    assert "(cached)" in text_table(second.summary)
    await versions.run(loaded, versions=["1", "2"], select=Selection(cache=False))
    assert len(fake.requests) == asked + 10  # --no-cache asks every one again


async def test_repeats_are_cached_as_separate_samples(versions, fake):
    loaded = load_text(TRIAGE_EVAL, "evals/triage.yaml")
    await versions.run(loaded, versions=["2"], select=Selection(repeat=3, patterns=["crash"]))
    assert len(fake.requests) == 3  # one per repeat, not one answer reused three times
    await versions.run(loaded, versions=["2"], select=Selection(repeat=3, patterns=["crash"]))
    assert len(fake.requests) == 3


async def test_judge_cost_counts_in_its_cell_apart_from_the_target(versions, fake):
    text = TRIAGE_EVAL.replace("concurrency: 6", "concurrency: 6\njudge_model: judge").replace(
        "  - {type: field, path: category}", "  - {type: field, path: category}\n  - {type: llm_rubric, rubric: names a category}")
    outcome = await versions.run(load_text(text, "evals/triage.yaml"), versions=["2"], select=Selection(patterns=["crash"]))
    [row] = versions.results.results(outcome.run_id)
    judge = [r for r in fake.requests if r["model"] == "judge-m"]
    assert len(judge) == 1
    # the judge is priced (1e-6 in, 2e-6 out): its cost is the cell's judge_cost, not its cost
    assert row["judge_cost"] > 0 and row["cost"] > 0 and row["spent"] == pytest.approx(row["cost"] + row["judge_cost"])
    [variant] = outcome.summary["variants"]
    assert variant["judge_cost"] == pytest.approx(row["judge_cost"])
    assert len(row["call_ids"]) == 2


async def test_latency_is_the_model_request(versions, fake):
    from hub.llm.fake import Reply

    fake.responder = lambda request: Reply(hurried(request) or "", delay=0.05)
    outcome = await versions.run(load_text(TRIAGE_EVAL, "evals/triage.yaml"), versions=["2"], select=Selection(cache=False))
    rows = versions.results.results(outcome.run_id)
    assert all(r["latency_ms"] >= 50 for r in rows)


async def test_unknown_alias_fails_before_any_call(versions, fake):
    text = TRIAGE_EVAL.replace("concurrency: 6", "concurrency: 6\nmodels: [fsat]\njudge_model: nobody")
    with pytest.raises(EvalReferenceError) as caught:
        await versions.run(load_text(text, "evals/triage.yaml"))
    message = str(caught.value)
    assert "unknown model alias 'fsat'; did you mean 'fast'?" in message and "judge_model: unknown model alias 'nobody'" in message
    missing = load_text(TRIAGE_EVAL.replace("[production, latest]", "[production, canary]"), "evals/triage.yaml")
    with pytest.raises(EvalReferenceError, match="version 'canary'"):
        await versions.run(missing)
    assert fake.requests == [] and versions.results.runs() == []


async def test_cases_pattern_and_filter_failing(versions, fake):
    loaded = load_text(TRIAGE_EVAL, "evals/triage.yaml")
    first = await versions.run(loaded, versions=["1"], select=Selection(patterns=["c*", "error-*"]))
    assert sorted({r["case_id"] for r in versions.results.results(first.run_id)}) == ["charged-twice", "crash", "error-500"]
    from hub.evals.cli import failing_cases

    failing = failing_cases(versions.results, first.run_id)
    assert failing == {"crash", "error-500"}
    again = await versions.run(loaded, versions=["2"], select=Selection(only=failing))
    assert sorted(r["case_id"] for r in versions.results.results(again.run_id)) == ["crash", "error-500"]


async def test_junit_report(versions):
    outcome = await versions.run(load_text(GATED, "evals/triage.yaml"), compare=("3", "1"))
    run = versions.results.run(outcome.run_id)
    root = ET.fromstring(to_junit(run, versions.results.results(run["id"])))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    candidate = suites["triage v3 (candidate, latest) × fast"]
    assert candidate.get("tests") == "6" and candidate.get("failures") == "4"
    failure = candidate.find("testcase[@name='invoice#1']/failure")
    assert failure is not None and "category is 'bug', expected 'billing'" in failure.get("message", "")
    thresholds = candidate.find("testcase[@name='thresholds']/failure")
    assert thresholds is not None and "gate regressions" in thresholds.get("message", "")


def test_stand_in_answers_by_prompt():
    request = {"messages": [{"role": "system", "content": "You triage tickets in a hurry."}, {"role": "user", "content": "x"}]}
    assert json.loads(hurried(request) or "")["category"] == "bug"
    assert user_text(request) == "x"
