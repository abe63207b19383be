"""Each assertion kind, negation, weights and thresholds; eval file errors with line numbers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from hub.evals import spec as S
from hub.evals.assertions import AssertionResult, Observed, case_grade, evaluate
from hub.evals.spec import EvalFileError, load_text

pytestmark = pytest.mark.anyio

OUTPUT = {"category": "billing", "urgency": "high", "score": 0.82, "tags": ["refund", "vip"], "summary": "Charged twice; wants a Refund."}
TEXT = '{"category": "billing", "urgency": "high", "score": 0.82, "tags": ["refund", "vip"], "summary": "Charged twice; wants a Refund."}'
_adapter: TypeAdapter[Any] = TypeAdapter(S.Assertion)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Models:
    """Model-backed checks without a model (the runner tests drive the real ones)."""

    def __init__(self, similarity: float = 0.9, verdict: dict[str, Any] | None = None):
        self.value = similarity
        self.verdict = verdict or {"pass": True, "score": 0.7, "reason": "fine"}
        self.asked: list[tuple[str, ...]] = []

    async def similarity(self, a: str, b: str, model: str | None, where: str) -> float:
        self.asked.append((a, b))
        return self.value

    async def judge(self, rubric: str, output: str, observed: Observed, model: str | None, where: str) -> dict[str, Any]:
        self.asked.append((rubric, output))
        return self.verdict


def observed(**kw: Any) -> Observed:
    case = S.Case.model_validate({"id": "c", "vars": {"body": "x"}, "expected": kw.pop("expected", {"category": "billing", "urgency": "normal"})})
    return Observed(case=case, case_id="c", output=kw.pop("output", OUTPUT), text=kw.pop("text", TEXT),
                    latency_ms=kw.pop("latency_ms", 120.0), cost=kw.pop("cost", 0.002), **kw)


async def check(raw: dict[str, Any], obs: Observed | None = None, models: Models | None = None) -> AssertionResult:
    return await evaluate(_adapter.validate_python(raw), obs or observed(), models or Models())


@pytest.mark.parametrize(("raw", "passed"), [
    ({"type": "equals", "path": "category", "value": "billing"}, True),
    ({"type": "equals", "path": "category"}, True),  # compared with expected.category
    ({"type": "equals", "path": "urgency"}, False),
    ({"type": "equals", "value": OUTPUT}, True),
    ({"type": "contains", "value": "Refund"}, True),
    ({"type": "contains", "value": "refund.", "path": "summary"}, False),
    ({"type": "icontains", "value": "REFUND.", "path": "summary"}, True),
    ({"type": "contains_any", "values": ["chargeback", "refund"]}, True),
    ({"type": "contains_any", "values": ["chargeback", "fraud"]}, False),
    ({"type": "contains_all", "values": ["charged", "refund"]}, True),
    ({"type": "contains_all", "values": ["charged", "fraud"]}, False),
    ({"type": "contains_all", "values": ["Charged", "fraud"], "threshold": 0.5, "ignore_case": False}, True),
    ({"type": "regex", "pattern": r"\"score\": 0\.\d+"}, True),
    ({"type": "regex", "pattern": "^charged", "path": "summary", "ignore_case": True}, True),
    ({"type": "regex", "pattern": "^charged", "path": "summary"}, False),
    ({"type": "is_json"}, True),
    ({"type": "json_schema", "schema": {"type": "object", "required": ["category"]}}, True),
    ({"type": "json_schema", "schema": {"type": "object", "required": ["reply"]}}, False),
    ({"type": "json_schema", "path": "tags", "schema": {"type": "array", "maxItems": 1}}, False),
    ({"type": "field", "path": "category"}, True),
    ({"type": "field", "path": "urgency", "one_of": ["high", "critical"]}, True),
    ({"type": "field", "path": "score", "min": 0.5, "max": 1}, True),
    ({"type": "field", "path": "score", "min": 0.9}, False),
    ({"type": "field", "path": "tags.0", "equals": "refund"}, True),
    ({"type": "field", "path": "missing", "equals": 1}, False),
    ({"type": "latency", "max_ms": 500}, True),
    ({"type": "latency", "max_ms": 100}, False),
    ({"type": "cost", "max": 0.01}, True),
    ({"type": "cost", "max": 0.001}, False),
])
async def test_kinds(raw, passed):
    result = await check(raw)
    assert result.passed is passed, result.reason
    assert result.score == (1.0 if passed else 0.0) or raw["type"] == "contains_all"


async def test_is_json_on_text_that_is_not_json():
    result = await check({"type": "is_json"}, observed(output="hello", text="hello"))
    assert not result.passed and "not valid JSON" in result.reason


async def test_reasons_say_what_was_found():
    assert (await check({"type": "equals", "path": "urgency"})).reason == "got 'high', expected 'normal'"
    assert (await check({"type": "field", "path": "score", "min": 0.9})).reason == "score is 0.82, outside [0.9, inf]"
    partial = await check({"type": "contains_all", "values": ["charged", "fraud"]})
    assert partial.score == 0.5 and partial.reason == "contains 1/2; missing ['fraud']"


async def test_negation_flips_verdict_and_score():
    result = await check({"type": "icontains", "value": "refund", "negate": True})
    assert not result.passed and result.score == 0.0 and result.name == "not icontains"
    result = await check({"type": "contains_all", "values": ["charged", "fraud"], "negate": True})
    assert result.passed and result.score == 0.5 and result.reason.startswith("negated: ")


async def test_python_checks(monkeypatch):
    import sys
    import types

    module = types.ModuleType("eval_checks_for_tests")

    def polite(output: Any, ctx: dict[str, Any]) -> Any:
        return {"pass": "refund" in output.lower(), "score": 0.6, "reason": f"checked {ctx['case_id']}"}

    module.polite = polite  # type: ignore[attr-defined]
    module.half = lambda output, ctx: 0.5  # type: ignore[attr-defined]
    module.boom = lambda output, ctx: 1 / 0  # type: ignore[attr-defined]

    async def slow(output: Any, ctx: dict[str, Any]) -> bool:
        return ctx["expected"]["category"] == output

    module.slow = slow  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "eval_checks_for_tests", module)
    ok = await check({"type": "python", "function": "eval_checks_for_tests:polite", "path": "summary"})
    assert ok.passed and ok.score == 0.6 and ok.reason == "checked c"
    assert not (await check({"type": "python", "function": "eval_checks_for_tests:polite", "path": "summary", "threshold": 0.8})).passed
    assert (await check({"type": "python", "function": "eval_checks_for_tests:half"})).passed  # default threshold 0.5
    assert not (await check({"type": "python", "function": "eval_checks_for_tests:half", "threshold": 0.7})).passed
    assert (await check({"type": "python", "function": "eval_checks_for_tests:slow", "path": "category"})).passed
    boom = await check({"type": "python", "function": "eval_checks_for_tests:boom"})
    assert not boom.passed and "ZeroDivisionError" in boom.reason
    missing = await check({"type": "python", "function": "eval_checks_for_tests:nope"})
    assert not missing.passed and "has no attribute" in missing.reason


async def test_similar_and_rubric_use_the_models_with_thresholds():
    models = Models(similarity=0.85)
    result = await check({"type": "similar", "path": "summary", "value": "double charge, refund wanted"}, models=models)
    assert result.passed and result.score == 0.85 and models.asked == [("Charged twice; wants a Refund.", "double charge, refund wanted")]
    assert not (await check({"type": "similar", "value": "x", "threshold": 0.9}, models=Models(0.85))).passed
    negated = await check({"type": "similar", "value": "x", "threshold": 0.9, "negate": True}, models=Models(0.85))
    assert negated.passed and negated.score == pytest.approx(0.15)
    judge = Models(verdict={"pass": True, "score": 0.7, "reason": "polite"})
    assert (await check({"type": "llm_rubric", "rubric": "Is it polite?"}, models=judge)).reason == "judge: polite"
    assert not (await check({"type": "llm_rubric", "rubric": "r", "threshold": 0.8}, models=judge)).passed
    failing = Models(verdict={"pass": False, "score": 0.2, "reason": "rude"})
    assert not (await check({"type": "llm_rubric", "rubric": "r"}, models=failing)).passed


async def test_a_failed_call_fails_every_assertion_even_negated():
    obs = observed(output=None, text=None, error={"type": "OutputInvalid", "message": "still invalid"})
    result = await check({"type": "contains", "value": "x", "negate": True}, obs)
    assert not result.passed and result.reason == "no output: still invalid"


def test_weights_and_case_score():
    results = [
        AssertionResult("a", "field", True, 1.0, "", 3.0),
        AssertionResult("b", "similar", False, 0.5, "", 1.0),
        AssertionResult("c", "llm_rubric", False, 0.0, "", 0.0),  # weight 0: reported, not counted
    ]
    passed, score = case_grade(results, None)
    assert not passed and score == pytest.approx((3 * 1.0 + 0.5) / 4)
    passed, score = case_grade([results[0], results[2]], None)
    assert passed and score == 1.0
    assert case_grade(results, {"message": "x"}) == (False, 0.0)


# -- eval files ------------------------------------------------------------------------------------


BAD = """\
name: triage
target: {prompt: triage}
versions: [production]
assert:
  - {type: field, path: category}
  - type: containz
    value: refund
thresholds: {pass_rat: 0.9}
cases:
  - id: a
    vars: {body: hi}
    assert:
      - {type: regex, pattern: "("}
      - {type: field, equals: 1}
  - id: b
    varz: {}
"""


def test_eval_file_errors_have_file_line_and_key():
    with pytest.raises(EvalFileError) as caught:
        load_text(BAD, "evals/triage.yaml")
    lines = str(caught.value).splitlines()
    assert lines[0] == "evals/triage.yaml has 5 errors:"
    assert lines[1].startswith("  evals/triage.yaml:6:11: assert[1].type: unknown type 'containz'")
    assert lines[1].endswith("did you mean 'contains'?")
    assert lines[2] == "  evals/triage.yaml:8:14: thresholds.pass_rat: unknown key 'pass_rat'; did you mean 'pass_rate'?"
    assert lines[3].startswith("  evals/triage.yaml:13:32: cases[0].assert[0].pattern: not a valid regular expression")
    assert lines[4] == "  evals/triage.yaml:14:9: cases[0].assert[1]: missing required key 'path'"
    assert lines[5] == "  evals/triage.yaml:16:5: cases[1].varz: unknown key 'varz'; did you mean 'vars'?"
    assert caught.value.locations[0].to_dict()["line"] == 6


def test_yaml_syntax_errors_and_duplicate_ids_have_lines():
    with pytest.raises(EvalFileError, match=r"x.yaml:3:1: <root>: invalid YAML"):
        load_text("name: a\ntarget: [\n", "x.yaml")
    dup = "name: a\ntarget: {prompt: p}\ncases:\n  - {id: one}\n  - {id: one}\n"
    with pytest.raises(EvalFileError, match=r"x.yaml:5:\d+: cases\[1\].id: case id 'one' is already used by case 1"):
        load_text(dup, "x.yaml")


def test_versions_need_a_prompt_and_the_schema_exports():
    with pytest.raises(EvalFileError, match="name it as target.prompt"):
        load_text("name: a\ntarget: {flow: f.yaml}\nversions: [latest]\n", "x.yaml")
    schema = S.json_schema()
    assert schema["title"] == "hub eval file" and schema["additionalProperties"] is False
    assert "cases" in schema["properties"] and "assert" in schema["properties"]
