"""What an eval refers to is checked before its first model call: the prompt and every version
or label compared, every model alias (compared, judge, embedding), the python checks, the flow.

A broken reference is a mistake in the eval (``hub eval`` exits 2), not a failed case: without
this check an unknown alias ran every case, each failing with the same error.
"""

from __future__ import annotations

from typing import Any

from hub.core.imports import import_object
from hub.errors import HubError, NotFound
from hub.evals import spec as S
from hub.llm.client import LLMClient
from hub.prompts.registry import PromptRegistry
from hub.prompts.spec import PromptFileError


class EvalReferenceError(HubError):
    """The eval names something that does not exist; nothing was called."""

    def __init__(self, file: str | None, problems: list[str]):
        where = file or "the eval"
        super().__init__(f"{where} refers to what does not exist (nothing was run):\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


def known_model(client: LLMClient, name: str) -> bool:
    """An alias of the models file, or a litellm model name given with its provider
    (``openai/gpt-4o-mini``); a bare name that is neither is a typo."""
    return name in client.config.models or "/" in name


def _model_problem(client: LLMClient, name: str, where: str) -> str | None:
    if known_model(client, name):
        return None
    from hub.flow.loader import suggest

    aliases = sorted(client.config.models)
    hint = suggest(name, aliases) or (f"; known aliases: {', '.join(aliases)}" if aliases else "")
    return f"{where}: unknown model alias {name!r}{hint} (or give a provider/model name)"


def _assertion_models(spec: S.EvalSpec) -> list[tuple[str, Any]]:
    every = [*spec.assert_, *(a for c in spec.cases for a in c.assert_)]
    return [(a.type, a) for a in every]


def check(
    loaded: S.LoadedEval, registry: PromptRegistry, client: LLMClient,
    versions: list[str] | None = None, models: list[str] | None = None,
) -> None:
    """Raise :class:`EvalReferenceError` listing every broken reference."""
    spec = loaded.spec
    problems: list[str] = []
    chosen = list(models or spec.models or [])
    for m in chosen:
        problems.append(_model_problem(client, m, "models") or "")
    name = spec.target.prompt
    if name is not None:
        problems += _prompt_problems(registry, client, name, [str(v) for v in versions or spec.versions], bool(chosen))
    assertions = _assertion_models(spec)
    judged = any(t == "llm_rubric" for t, _ in assertions)
    for kind, a in assertions:
        model = getattr(a, "model", None)
        if model:
            problems.append(_model_problem(client, model, f"{kind} assertion") or "")
        if kind == "python":
            try:
                import_object(a.function)
            except ValueError as exc:
                problems.append(f"python assertion: {exc}")
    if spec.judge_model:
        problems.append(_model_problem(client, spec.judge_model, "judge_model") or "")
    elif judged and not client.default_model and not all(getattr(a, "model", None) for t, a in assertions if t == "llm_rubric"):
        problems.append("llm_rubric needs a judge: set judge_model (or a default model)")
    if spec.embedding_model:
        problems.append(_model_problem(client, spec.embedding_model, "embedding_model") or "")
    elif any(t == "similar" and not getattr(a, "model", None) for t, a in assertions):
        problems.append("similar needs an embedding model: set embedding_model or the assertion's model")
    found = [p for p in dict.fromkeys(problems) if p]
    if found:
        raise EvalReferenceError(loaded.file, found)


def _prompt_problems(registry: PromptRegistry, client: LLMClient, name: str, refs: list[str], overridden: bool) -> list[str]:
    try:
        registry.sync(name)
        registry.versions(name)
    except (NotFound, PromptFileError) as exc:
        return [f"target.prompt: {exc}"]
    problems: list[str] = []
    for ref in refs:
        try:
            number = registry.version_of(name, ref)
            row = registry.get(name, number)
        except (NotFound, ValueError) as exc:
            problems.append(f"version {ref!r}: {exc}")
            continue
        model = row["spec"].get("model") or client.default_model
        if overridden:
            continue
        if not model:
            problems.append(f"{name}:{number} names no model and there is no default model; set 'models' in the eval")
        else:
            problems.append(_model_problem(client, model, f"{name}:{number}'s model") or "")
    return problems
