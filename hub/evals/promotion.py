"""What the evals feature lends the prompt registry's ``hub prompts promote`` (``EVAL_GATE`` of
:mod:`hub.core.host`): the check of an ``--eval-run`` and the eval run of ``--require-eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.core.host import EVAL_GATE, provide


class Promotion:
    def verify(self, engine: Any, name: str, version: int, run_id: str) -> str:
        from hub.evals.gate import verify_evidence
        from hub.evals.results import EvalStore

        return verify_evidence(EvalStore(engine), name, version, run_id)

    def run_and_promote(self, name: str, version: str, label: str, file: Path, prompts_dir: Path | None,
                        actor: str | None) -> dict[str, Any]:
        from hub.evals.cli import require_eval

        return require_eval(name, version, label, file, prompts_dir, actor=actor)


provide(EVAL_GATE, Promotion())
