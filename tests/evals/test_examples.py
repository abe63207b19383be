"""The shipped evals: one per shipped prompt, at least 20 cases, and consistent with themselves
(a model answering exactly the expected outputs passes every threshold)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hub.evals.spec import LoadedEval, load_file
from tests.evals.helpers import system_text, user_text

REPO = Path(__file__).resolve().parents[2]
PROMPTS = sorted(p.stem for p in (REPO / "prompts").glob("*.yaml"))

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def shipped() -> dict[str, LoadedEval]:
    evals = [load_file(p) for p in sorted((REPO / "evals").glob("*.yaml"))]
    return {e.spec.target.prompt or "": e for e in evals}


def test_every_shipped_prompt_has_an_eval_with_20_cases():
    found = shipped()
    for name in PROMPTS:
        assert name in found, f"prompts/{name}.yaml has no eval in evals/"
        cases = found[name].spec.cases
        assert len(cases) >= 20
        assert len({c.id for c in cases}) == len(cases) and all(c.expected for c in cases)


def _bounds(case: Any) -> tuple[float, float]:
    low, high = 0.0, 1.0
    for a in case.assert_:
        if a.type == "field" and a.path == "score":
            low = a.min if a.min is not None else low
            high = a.max if a.max is not None else high
    return low, high


def perfect_answer(loaded: LoadedEval, request: dict[str, Any]) -> str:
    if system_text(request).startswith("You grade"):
        return json.dumps({"pass": True, "score": 1.0, "reason": "meets the rubric"})
    text = user_text(request)
    for case in loaded.spec.cases:
        key = case.vars.get("subject") or case.vars.get("email")
        if key and str(key) in text:
            break
    else:
        raise AssertionError(f"no case matches {text[:80]!r}")
    if loaded.spec.target.prompt == "support_triage":
        return json.dumps({
            **case.expected, "summary": "The customer reports an issue; details are in the ticket.",
            "draft_reply": "Thank you for contacting us. We are looking into this and will get back to you.",
            "suspicious": "injection" in case.tags,
        })
    low, high = _bounds(case)
    return json.dumps({**case.expected, "score": round((low + high) / 2, 2), "reasons": ["matches the profile"]})


@pytest.mark.parametrize("prompt", PROMPTS)
async def test_a_model_answering_the_expected_outputs_passes(prompt, runner, fake, project):
    for name in PROMPTS:
        shutil.copy(REPO / "prompts" / f"{name}.yaml", project / "prompts" / f"{name}.yaml")
    loaded = shipped()[prompt]
    fake.responder = lambda request: perfect_answer(loaded, request)
    outcome = await runner.run(loaded, versions=["latest"])
    [v] = outcome.summary["variants"]
    failing = [r for r in runner.results.results(outcome.run_id) if not r["passed"]]
    assert not failing, [(r["case_id"], r["error"], [a for a in r["assertions"] if not a["passed"]]) for r in failing]
    assert v["thresholds_passed"] and v["runs"] == len(loaded.spec.cases)
