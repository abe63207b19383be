"""Gated promotion: a label moves onto a prompt version only when an eval backs it.

When the label already points at another version, the candidate runs against it on the same
cases and models (:mod:`hub.evals.compare`): it must not fall below it on pass rate and must meet
the eval file's ``gates`` and ``thresholds``. When the label is new (or already there), the
candidate runs alone and must meet the thresholds. The move is recorded with the run that
justified it, in the label history (who, when, why, eval run) and in ``eval_promotions``.
"""

from __future__ import annotations

from typing import Any

from hub.errors import HubError, NotFound
from hub.evals.report import missed
from hub.evals.results import EvalStore
from hub.evals.runner import EvalRunner, Outcome
from hub.evals.spec import LoadedEval
from hub.prompts.registry import Move


class PromotionRefused(HubError):
    """The version did not pass the eval; the label did not move."""

    def __init__(self, message: str, run_id: str):
        super().__init__(message)
        self.run_id = run_id


def _misses(outcome: Outcome) -> list[str]:
    summary = outcome.summary
    out = []
    for p in (summary.get("comparison") or {}).get("pairs", []):
        out += [f"{p['candidate']}: {g['name']} is {g['value'] if g['value'] is None else round(g['value'], 4)}, "
                f"needs {'≥' if g['kind'] == 'min' else '≤'} {g['limit']:g}" for g in p["gates"] if not g["passed"]]
    for v in summary["variants"]:
        if v.get("role") in (None, "candidate"):
            out += [f"{v['key']}: {missed(t)}" for t in v["thresholds"] if not t["passed"]]
    if summary.get("incomplete"):
        out.append(f"{summary['incomplete']} case run(s) got no answer")
    return out or ["no model was compared"]


async def promote_gated(
    runner: EvalRunner, loaded: LoadedEval, name: str, version: str | int, label: str = "production",
    actor: str | None = None,
) -> dict[str, Any]:
    """Run ``loaded`` on ``name`` at ``version`` (against the version ``label`` now names);
    move ``label`` there when it passes. Returns ``{version, previous, run_id, promotion_id,
    comparison}``; raises :class:`PromotionRefused`."""
    target = loaded.spec.target.prompt
    if target != name:
        raise HubError(f"{loaded.file} evaluates prompt {target!r}, not {name!r}; give the eval of {name!r}")
    registry = runner.registry
    registry.sync(name)
    number = registry.version_of(name, version)
    current = registry.labels(name).get(label)
    compared = current is not None and current != number
    if compared:
        outcome = await runner.run(loaded, compare=(str(number), str(current)))
    else:
        outcome = await runner.run(loaded, versions=[str(number)])
    if not outcome.passed or outcome.incomplete:
        against = f" against v{current} ({label})" if compared else ""
        raise PromotionRefused(
            f"{name}:{number} did not pass {loaded.file}{against} (eval run {outcome.run_id}): {'; '.join(_misses(outcome))}; "
            f"'{label}' stays where it was",
            outcome.run_id,
        )
    why = f"eval {loaded.spec.name} passed" + (f" against v{current}" if compared else "")
    moved, previous = registry.promote(name, number, label, Move(actor=actor, reason=why, eval_run=outcome.run_id))
    promotion_id = runner.results.record_promotion(
        prompt_name=name, label=label, version=moved, previous=previous, run_id=outcome.run_id, eval_file=loaded.file,
    )
    return {"name": name, "label": label, "version": moved, "previous": previous, "run_id": outcome.run_id,
            "promotion_id": promotion_id, "compared_with": current if compared else None}


def verify_evidence(results: EvalStore, name: str, version: int, run_id: str) -> str:
    """The id of a stored eval run that backs moving a label of ``name`` onto ``version``: it
    passed, evaluated that prompt, and ran that version (as the candidate of a comparison)."""
    try:
        run = results.run(run_id)
    except NotFound:
        raise HubError(f"there is no eval run {run_id!r}; see 'hub eval list'") from None
    if (run.get("target") or {}).get("prompt") != name:
        raise HubError(f"eval run {run['id']} evaluated {(run.get('target') or {}).get('prompt')!r}, not {name!r}")
    if run["status"] != "done" or not run["passed"]:
        raise HubError(f"eval run {run['id']} did not pass ({run['status']}); it cannot justify the move")
    variants = run.get("variants") or []
    candidates = [v for v in variants if v.get("role") == "candidate"] or (variants if len({v.get("version") for v in variants}) == 1 else [])
    if not any(v.get("version") == version for v in candidates):
        raise HubError(f"eval run {run['id']} did not evaluate {name}:{version} as its candidate")
    return str(run["id"])
