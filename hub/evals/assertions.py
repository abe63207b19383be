"""Checking one output: every assertion gives a :class:`Grade` (pass, score in [0, 1], reason).

Options shared by every kind: ``path`` picks a field of the JSON output first, ``negate`` flips
the verdict (and the score becomes ``1 - score``), ``weight`` is the assertion's share of the
case score (0: reported only), ``threshold`` is the score a scored check must reach (the
fraction matched for ``contains_all``, the similarity for ``similar``, the judge's score for
``llm_rubric``, a number returned by a ``python`` check).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from hub.core.imports import import_object
from hub.evals import spec as S
from hub.llm.validation import extract_json, schema_errors
from hub.prompts import rules


@dataclass
class Grade:
    passed: bool
    score: float
    reason: str


@dataclass
class Observed:
    """One run of one case: what came out, what it cost, and the case it answers."""

    case: S.Case
    case_id: str
    output: Any = None
    text: str | None = None
    error: dict[str, Any] | None = None
    latency_ms: float = 0.0
    cost: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    where: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Models(Protocol):
    """The model-backed checks, provided by the runner (calls recorded with the run)."""

    async def similarity(self, a: str, b: str, model: str | None, where: str) -> float: ...

    async def judge(self, rubric: str, output: str, observed: Observed, model: str | None, where: str) -> dict[str, Any]: ...


@dataclass
class AssertionResult:
    name: str
    type: str
    passed: bool
    score: float
    reason: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dig(value: Any, dotted: str | None) -> tuple[bool, Any]:
    """``(found, value)`` of ``a.b.0`` inside dicts and lists (a JSON string is parsed first)."""
    if not dotted:
        return True, value
    if isinstance(value, str):
        try:
            value = extract_json(value)
        except ValueError:
            return False, None
    return rules.dig(value, dotted)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _binary(ok: bool, reason_ok: str, reason_bad: str) -> Grade:
    return Grade(ok, 1.0 if ok else 0.0, reason_ok if ok else reason_bad)


def _subject(a: S._Assertion, obs: Observed) -> tuple[bool, Any]:
    """What a check looks at: the field at ``path``, else the output (the raw text for strings)."""
    if a.path:
        return dig(obs.output, a.path)
    return True, obs.output


def _subject_text(a: S._Assertion, obs: Observed) -> str:
    if not a.path and obs.text is not None:
        return obs.text
    found, value = _subject(a, obs)
    return as_text(value) if found else ""


def _expected(a: S._Assertion, obs: Observed) -> tuple[bool, Any]:
    if a.path:
        return dig(obs.case.expected, a.path)
    return obs.case.expected is not None, obs.case.expected


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and not isinstance(expected, str):
        try:
            actual = extract_json(actual)
        except ValueError:
            return False
    if isinstance(actual, int | float) and isinstance(expected, int | float) and not isinstance(actual, bool):
        return float(actual) == float(expected)
    return bool(actual == expected)


# -- the kinds -----------------------------------------------------------------------------------


async def _equals(a: S.Equals, obs: Observed, models: Models) -> Grade:
    if "value" in a.model_fields_set:
        expected = a.value
    else:
        found, expected = _expected(a, obs)
        if not found:
            return Grade(False, 0.0, f"the case has no expected value{' at ' + a.path if a.path else ''}")
    found, actual = _subject(a, obs)
    if not found:
        return Grade(False, 0.0, f"field {a.path!r} is missing")
    ok = _same(actual, expected)
    return _binary(ok, f"equals {_short(expected)}", f"got {_short(actual)}, expected {_short(expected)}")


async def _contains(a: S.Contains, obs: Observed, models: Models) -> Grade:
    text = _subject_text(a, obs)
    ok = a.value.lower() in text.lower() if a.type == "icontains" else a.value in text
    return _binary(ok, f"contains {a.value!r}", f"{_short(text, 60)} does not contain {a.value!r}")


async def _contains_many(a: S.ContainsMany, obs: Observed, models: Models) -> Grade:
    text = _subject_text(a, obs)
    haystack = text.lower() if a.ignore_case else text
    found = [v for v in a.values if (v.lower() if a.ignore_case else v) in haystack]
    missing = [v for v in a.values if v not in found]
    if a.type == "contains_any":
        return _binary(bool(found), f"contains {found[0]!r}" if found else "", f"contains none of {a.values}")
    score = len(found) / len(a.values)
    ok = score >= (a.threshold if a.threshold is not None else 1.0)
    return Grade(ok, score, f"contains {len(found)}/{len(a.values)}" + (f"; missing {missing}" if missing else ""))


async def _regex(a: S.Regex, obs: Observed, models: Models) -> Grade:
    text = _subject_text(a, obs)
    ok = re.search(a.pattern, text, re.IGNORECASE if a.ignore_case else 0) is not None
    return _binary(ok, f"matches /{a.pattern}/", f"{_short(text, 60)} does not match /{a.pattern}/")


async def _is_json(a: S.IsJson, obs: Observed, models: Models) -> Grade:
    found, value = _subject(a, obs) if a.path else (True, obs.text if obs.text is not None else obs.output)
    if not found:
        return Grade(False, 0.0, f"field {a.path!r} is missing")
    if not isinstance(value, str):
        return _binary(isinstance(value, dict | list), "is JSON", f"{type(value).__name__} is not a JSON object")
    try:
        extract_json(value)
    except ValueError as exc:
        return Grade(False, 0.0, str(exc))
    return Grade(True, 1.0, "is JSON")


async def _json_schema(a: S.JsonSchema, obs: Observed, models: Models) -> Grade:
    found, value = _subject(a, obs)
    if isinstance(value, str):
        try:
            value = extract_json(value)
        except ValueError as exc:
            return Grade(False, 0.0, str(exc))
    if not found:
        return Grade(False, 0.0, f"field {a.path!r} is missing")
    errors = schema_errors(a.schema_, value)
    return _binary(not errors, "matches the schema", "; ".join(errors[:3]))


async def _field(a: S.FieldCheck, obs: Observed, models: Models) -> Grade:
    found, value = dig(obs.output, a.path)
    if not found:
        return Grade(False, 0.0, f"field {a.path!r} is missing")
    problems: list[str] = []
    checked = False
    if "equals" in a.model_fields_set:
        checked = True
        if not _same(value, a.equals):
            problems.append(f"is {_short(value)}, expected {_short(a.equals)}")
    if a.one_of is not None:
        checked = True
        if value not in a.one_of:
            problems.append(f"is {_short(value)}, not one of {_short(a.one_of)}")
    if a.min is not None or a.max is not None:
        checked = True
        if not isinstance(value, int | float) or isinstance(value, bool):
            problems.append(f"is {_short(value)}, not a number")
        elif (a.min is not None and value < a.min) or (a.max is not None and value > a.max):
            problems.append(f"is {value}, outside [{a.min if a.min is not None else '-inf'}, {a.max if a.max is not None else 'inf'}]")
    if not checked:
        has, expected = dig(obs.case.expected, a.path)
        if not has:
            return Grade(False, 0.0, f"the case's expected has no {a.path!r} to compare with")
        if not _same(value, expected):
            problems.append(f"is {_short(value)}, expected {_short(expected)}")
    return _binary(not problems, f"{a.path} = {_short(value)}", f"{a.path} " + "; ".join(problems))


async def _python(a: S.Python, obs: Observed, models: Models) -> Grade:
    try:
        fn = import_object(a.function)
    except ValueError as exc:
        return Grade(False, 0.0, str(exc))
    _, subject = _subject(a, obs)
    context = {
        "case_id": obs.case_id, "expected": obs.case.expected, "vars": obs.case.vars, "inputs": obs.case.inputs,
        "metadata": obs.case.metadata, "text": obs.text, "latency_ms": obs.latency_ms, "cost": obs.cost,
    }
    try:
        result = fn(subject, context)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # the author's check failed: that is its verdict, with the reason
        return Grade(False, 0.0, f"{a.function} raised {type(exc).__name__}: {exc}")
    threshold = a.threshold if a.threshold is not None else 0.5
    if isinstance(result, bool) or result is None:
        ok = result is not False
        return _binary(ok, f"{a.function} accepted it", f"{a.function} rejected it")
    if isinstance(result, int | float):
        score = max(0.0, min(1.0, float(result)))
        return Grade(score >= threshold, score, f"{a.function} scored {score:.2f}")
    if isinstance(result, dict):
        score = float(result.get("score", 1.0 if result.get("pass", True) else 0.0))
        ok = bool(result.get("pass", score >= threshold)) and (a.threshold is None or score >= a.threshold)
        return Grade(ok, max(0.0, min(1.0, score)), str(result.get("reason") or f"{a.function} scored {score:.2f}"))
    return Grade(False, 0.0, f"{a.function} returned {type(result).__name__}; return a bool, a score or a dict")


async def _latency(a: S.Latency, obs: Observed, models: Models) -> Grade:
    ok = obs.latency_ms <= a.max_ms
    return _binary(ok, f"{obs.latency_ms:.0f} ms ≤ {a.max_ms:g} ms", f"{obs.latency_ms:.0f} ms > {a.max_ms:g} ms")


async def _cost(a: S.Cost, obs: Observed, models: Models) -> Grade:
    ok = obs.cost <= a.max
    return _binary(ok, f"${obs.cost:.6f} ≤ ${a.max:g}", f"${obs.cost:.6f} > ${a.max:g}")


async def _similar(a: S.Similar, obs: Observed, models: Models) -> Grade:
    if a.value is not None:
        reference = a.value
    else:
        found, expected = _expected(a, obs)
        if not found:
            return Grade(False, 0.0, "give 'value' or an expected output to compare with")
        reference = as_text(expected)
    text = _subject_text(a, obs)
    similarity = await models.similarity(text, reference, a.model, f"{obs.where}/similar")
    score = max(0.0, min(1.0, similarity))
    threshold = a.threshold if a.threshold is not None else 0.8
    ok = score >= threshold
    return Grade(ok, score, f"similarity {score:.3f} {'≥' if ok else '<'} {threshold:g}")


async def _llm_rubric(a: S.LlmRubric, obs: Observed, models: Models) -> Grade:
    text = _subject_text(a, obs)
    verdict = await models.judge(a.rubric, text, obs, a.model, f"{obs.where}/judge")
    score = max(0.0, min(1.0, float(verdict.get("score", 1.0 if verdict.get("pass") else 0.0))))
    ok = bool(verdict.get("pass")) and (a.threshold is None or score >= a.threshold)
    return Grade(ok, score, f"judge: {verdict.get('reason', '')}".strip())


def tool_calls(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every ``{name, arguments}`` in the step outputs' ``tool_calls`` (OpenAI's ``function``
    shape too, with its arguments as a JSON string), in the order the steps ran."""
    out = []
    for step in steps:
        output = step.get("output")
        calls = output.get("tool_calls") if isinstance(output, dict) else None
        for call in calls if isinstance(calls, list) else []:
            if not isinstance(call, dict):
                continue
            inner = call.get("function")
            fn: dict[str, Any] = inner if isinstance(inner, dict) else call
            arguments = fn.get("arguments")
            if isinstance(arguments, str):
                with contextlib.suppress(ValueError):
                    arguments = json.loads(arguments)
            out.append({"name": fn.get("name"), "arguments": arguments, "step": step.get("id")})
    return out


def _in_order(wanted: list[str], ran: list[str]) -> bool:
    it = iter(ran)
    return all(any(step == w for step in it) for w in wanted)


async def _trajectory(a: S.Trajectory, obs: Observed, models: Models) -> Grade:
    if "steps" not in obs.extra:
        return Grade(False, 0.0, "no trajectory: trajectory assertions need a flow target")
    steps: list[dict[str, Any]] = obs.extra["steps"]
    ran = [str(s["id"]) for s in steps]
    problems: list[str] = []
    if a.steps and not _in_order(a.steps, ran):
        problems.append(f"steps {a.steps} did not run in that order (ran {ran})")
    for name in a.not_steps or []:
        if name in ran:
            problems.append(f"step {name!r} ran")
    if a.max_steps is not None and len(steps) > a.max_steps:
        problems.append(f"{len(steps)} step runs > {a.max_steps}")
    turns = int(obs.extra.get("turns", 0))
    if a.max_turns is not None and turns > a.max_turns:
        problems.append(f"{turns} model turns > {a.max_turns}")
    calls = tool_calls(steps)
    for check in a.tool_calls or []:
        named = [c for c in calls if c["name"] == check.name]
        matching = [c for c in named if check.arguments is None or not schema_errors(check.arguments, c["arguments"])]
        if len(matching) < check.min:
            detail = f" ({len(named)} with other arguments: {schema_errors(check.arguments or {}, named[0]['arguments'])[0]})" if named and check.arguments and not matching else ""
            problems.append(f"tool {check.name!r} called {len(matching)} time(s) as asked, needs ≥ {check.min}{detail}")
        if check.max is not None and len(matching) > check.max:
            problems.append(f"tool {check.name!r} called {len(matching)} time(s), at most {check.max}")
    if a.approval is not None and bool(obs.extra.get("approval")) != a.approval:
        problems.append("no approval was requested" if a.approval else "an approval was requested")
    summary = f"{len(steps)} steps, {turns} turns, {len(calls)} tool calls"
    return _binary(not problems, summary, "; ".join(problems))


CHECKS: dict[str, Callable[[Any, Observed, Models], Awaitable[Grade]]] = {
    "equals": _equals,
    "contains": _contains,
    "icontains": _contains,
    "contains_any": _contains_many,
    "contains_all": _contains_many,
    "regex": _regex,
    "is_json": _is_json,
    "json_schema": _json_schema,
    "field": _field,
    "python": _python,
    "latency": _latency,
    "cost": _cost,
    "similar": _similar,
    "llm_rubric": _llm_rubric,
    "trajectory": _trajectory,
}


async def evaluate(a: S._Assertion, obs: Observed, models: Models) -> AssertionResult:
    """Run one assertion on one observed output (negation applied last)."""
    kind = a.type
    if obs.error is not None:
        grade = Grade(False, 0.0, f"no output: {obs.error.get('message', obs.error)}")
    else:
        try:
            grade = await CHECKS[kind](a, obs, models)
        except Exception as exc:  # a judge or embedding call that failed: the check cannot pass
            grade = Grade(False, 0.0, f"{kind} could not run: {type(exc).__name__}: {exc}")
            return AssertionResult(a.label, kind, False, 0.0, grade.reason, a.weight)
        if a.negate:
            grade = Grade(not grade.passed, 1.0 - grade.score, f"negated: {grade.reason}")
    return AssertionResult(a.label, kind, grade.passed, round(grade.score, 6), grade.reason, a.weight)


def case_grade(results: list[AssertionResult], error: dict[str, Any] | None) -> tuple[bool, float]:
    """A case run passes when its call worked and every weighted assertion passed; its score is the
    weighted mean of the assertion scores."""
    counted = [r for r in results if r.weight > 0]
    passed = error is None and all(r.passed for r in counted)
    total = sum(r.weight for r in counted)
    if error is not None:
        return False, 0.0
    if total == 0:
        return passed, 1.0 if passed else 0.0
    return passed, sum(r.score * r.weight for r in counted) / total
