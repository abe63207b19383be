"""Gated promotion: a label moves onto a prompt version only when that version passes an eval.

The eval runs with only that version (and the eval's models); every variant must meet the
thresholds. The promotion is recorded with the run that justified it (``eval_promotions``),
next to the registry's own history of label moves.
"""

from __future__ import annotations

from typing import Any

from hub.errors import HubError
from hub.evals.report import missed
from hub.evals.runner import EvalRunner
from hub.evals.spec import LoadedEval


class PromotionRefused(HubError):
    """The version did not pass the eval; the label did not move."""

    def __init__(self, message: str, run_id: str):
        super().__init__(message)
        self.run_id = run_id


async def promote_gated(
    runner: EvalRunner, loaded: LoadedEval, name: str, version: str | int, label: str = "production",
) -> dict[str, Any]:
    """Run ``loaded`` on ``name`` at ``version``; move ``label`` there when it passes.
    Returns ``{version, previous, run_id, promotion_id}``; raises :class:`PromotionRefused`."""
    target = loaded.spec.target.prompt
    if target != name:
        raise HubError(f"{loaded.file} evaluates prompt {target!r}, not {name!r}; give the eval of {name!r}")
    registry = runner.registry
    registry.sync(name)
    number = registry.version_of(name, version)
    outcome = await runner.run(loaded, versions=[str(number)])
    if not outcome.passed:
        misses = [f"{v['key']}: {missed(t)}" for v in outcome.summary["variants"] for t in v["thresholds"] if not t["passed"]]
        raise PromotionRefused(
            f"{name}:{number} did not pass {loaded.file} (eval run {outcome.run_id}): {'; '.join(misses)}; "
            f"'{label}' stays where it was",
            outcome.run_id,
        )
    moved, previous = registry.promote(name, number, label)
    promotion_id = runner.results.record_promotion(
        prompt_name=name, label=label, version=moved, previous=previous, run_id=outcome.run_id, eval_file=loaded.file,
    )
    return {"name": name, "label": label, "version": moved, "previous": previous, "run_id": outcome.run_id,
            "promotion_id": promotion_id}
