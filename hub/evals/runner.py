"""Running an eval: every version × model × case × repeat, concurrently, stored as it goes.

A prompt target runs the ``llm.chat`` task itself (:class:`hub.llm.chat.Chat`) with the
version pinned, so the eval renders, calls, validates and repairs exactly as production does,
and every call lands in ``llm_calls`` under the run id (``execution_id``) and the case run's
path (``v2/fast/double-charge#1``). A flow target starts real executions of the flow on an
engine whose prompt resolver hands the compared version to the prompt's steps.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.errors import HubError, error_dict
from hub.evals import assertions as A
from hub.evals.judges import CaseModels
from hub.evals.report import summarize
from hub.evals.results import EvalStore, new_run_id
from hub.evals.spec import Case, LoadedEval
from hub.llm.chat import CacheSpec, Chat, ChatParams
from hub.llm.client import LLMClient, default_client
from hub.llm.records import CallLog
from hub.llm.services import LLM_CLIENT, PROMPTS
from hub.llm.settings import LLMSettings
from hub.prompts.registry import PromptRegistry, Resolved
from hub.prompts.spec import parse_reference
from hub.settings import HubSettings
from hub.tasks.base import TaskContext

if TYPE_CHECKING:
    from hub.store.database import Database
    from hub.store.store import Store

CACHE_TTL = 30 * 86400.0  # eval answers are reused for 30 days (the cache is keyed by the exact request)

_quiet = logging.getLogger("hub.evals.calls")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False

Progress = Callable[[int, int, dict[str, Any]], None]


@dataclass
class Variant:
    """One column of the comparison: a prompt version with a model (or the flow as it is)."""

    key: str
    prompt: str | None = None
    version: int | None = None
    ref: str | None = None
    labels: list[str] = field(default_factory=list)
    model: str | None = None
    model_override: str | None = None
    content_hash: str | None = None
    role: str | None = None  # "candidate" or "against" in a comparison

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FixedPrompts:
    """The ``prompts`` service of an eval: the compared prompt resolves to the variant's version
    (with the variant's model); other prompts resolve as usual."""

    def __init__(self, registry: PromptRegistry, variant: Variant, memo: dict[str, Resolved] | None = None):
        self.registry = registry
        self.variant = variant
        self.memo = memo if memo is not None else {}  # the variant's version, read once (a version never changes)

    def resolve_for_step(self, reference: str, execution_id: str, path: str, as_of: float | None = None) -> Resolved:
        ref = parse_reference(reference)
        v = self.variant
        if v.prompt is None or ref.name != v.prompt or v.version is None:
            return self.registry.resolve_for_step(reference, execution_id, path, as_of=as_of)
        key = f"{v.prompt}:{v.version}|{v.model_override}|{reference}"
        found = self.memo.get(key)
        if found is None:
            stored = self.registry.resolve(f"{v.prompt}:{v.version}", sync=False)
            spec = stored.spec.model_copy(update={"model": v.model_override}) if v.model_override else stored.spec
            found = self.memo[key] = Resolved(str(reference), stored.name, stored.version, stored.content_hash, spec)
        return found


@dataclass
class Outcome:
    run_id: str
    summary: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.summary.get("passed"))

    @property
    def incomplete(self) -> bool:
        """Some case runs could not get an answer (provider down after retries)."""
        return bool(self.summary.get("incomplete"))


@dataclass
class Selection:
    """Which cases run, how often, how many at once, from the cache or not."""

    tags: list[str] | None = None
    patterns: list[str] | None = None  # fnmatch patterns of case ids ('--cases')
    only: set[str] | None = None  # case ids ('--filter-failing RUN')
    repeat: int | None = None
    concurrency: int | None = None
    cache: bool | None = None

    def cases(self, loaded: LoadedEval) -> list[tuple[int, Case]]:
        spec = loaded.spec
        out = []
        for i, c in enumerate(spec.cases):
            cid = spec.case_id(i)
            if self.tags and not set(self.tags) & set(c.tags):
                continue
            if self.patterns and not any(fnmatch.fnmatchcase(cid, p) for p in self.patterns):
                continue
            if self.only is not None and cid not in self.only:
                continue
            out.append((i, c))
        return out


class EvalRunner:
    """Runs eval files against a store with an LLM client (the same ones flows use).

    ``store`` may be a :class:`~hub.store.database.Database`: a prompt's eval uses its engine
    alone, and a flow's makes the full store on it when it starts."""

    def __init__(
        self,
        store: Store | Database,
        client: LLMClient | None = None,
        settings: HubSettings | None = None,
        progress: Progress | None = None,
    ):
        self.store = store
        self.settings = settings if settings is not None else HubSettings()  # embedders and tests
        self.client = client or default_client(self.settings.section(LLMSettings))
        self.progress = progress
        self.results = EvalStore(store.engine)
        self.calls = CallLog.for_store(store)
        self.registry = PromptRegistry(store.engine, self.settings.prompts_dir)
        self._resolved: dict[str, Resolved] = {}  # FixedPrompts' memo, shared by every case run

    # -- the matrix ------------------------------------------------------------------------------

    def variants(
        self, loaded: LoadedEval, versions: list[str] | None = None, models: list[str] | None = None,
        roles: dict[str, str] | None = None,
    ) -> list[Variant]:
        """Resolve labels to versions (the prompt file is synced first, so an edited file is
        ``latest``); the same version named twice is one variant with both names. ``roles``
        names the candidate and the version it is compared against (``{ref: role}``)."""
        spec = loaded.spec
        name = spec.target.prompt
        if name is None:
            return [Variant(key="flow")]
        self.registry.sync(name)
        labels_of = {v["version"]: v["labels"] for v in self.registry.versions(name)}
        chosen_models: list[str | None] = [*(models or spec.models or [])] or [None]
        out: dict[str, Variant] = {}
        for ref in versions or spec.versions:
            number = self.registry.version_of(name, ref)
            row = self.registry.get(name, number)
            for model in chosen_models:
                actual = model or row["spec"].get("model") or self.client.default_model
                key = f"v{number}/{actual}"
                if key in out:
                    continue
                out[key] = Variant(
                    key=key, prompt=name, version=number, ref=str(ref), labels=labels_of.get(number, []),
                    model=actual, model_override=model, content_hash=row["content_hash"],
                    role=(roles or {}).get(str(ref)),
                )
        return list(out.values())

    def check(self, loaded: LoadedEval, versions: list[str] | None = None, models: list[str] | None = None) -> None:
        """Every reference of the eval resolves (raises :class:`EvalReferenceError`); no call made."""
        from hub.evals import preflight

        preflight.check(loaded, self.registry, self.client, versions, models)

    async def run(
        self,
        loaded: LoadedEval,
        *,
        versions: list[str] | None = None,
        models: list[str] | None = None,
        baseline: str | None = None,
        run_id: str | None = None,
        tags: list[str] | None = None,
        select: Selection | None = None,
        compare: tuple[str, str] | None = None,
    ) -> Outcome:
        """Run the eval; returns the run id and its summary (thresholds judged per variant).

        ``compare=(candidate, against)`` runs those two versions (or labels) and judges the
        candidate against the other with the file's ``gates``."""
        spec = loaded.spec
        select = select or Selection()
        if tags:
            select.tags = tags
        roles = None
        if compare is not None:
            roles = {compare[0]: "candidate", compare[1]: "against"}
            versions = [compare[1], compare[0]]
        self.check(loaded, versions, models)
        variants = self.variants(loaded, versions, models, roles)
        if compare is not None:
            self._distinct(variants, compare)
        repeat = select.repeat or spec.repeat
        cache = spec.cache if select.cache is None else select.cache
        cases = select.cases(loaded)
        run_id = run_id or new_run_id()
        concurrency = select.concurrency or spec.concurrency
        options: dict[str, Any] = {"repeat": repeat, "cache": cache, "concurrency": concurrency,
                   "cases": [spec.case_id(i) for i, _ in cases], "compare": list(compare) if compare else None}
        self.results.create_run(
            run_id, name=spec.name, file=loaded.file, target=spec.target.model_dump(exclude_none=True),
            variants=[v.to_dict() for v in variants], spec={**spec.model_dump(mode="json", by_alias=True), "run": options},
            baseline_id=baseline,
        )
        try:
            summary = await self._matrix(run_id, loaded, variants, cases, repeat, cache, concurrency)
            if compare is not None:
                from hub.evals.compare import comparison

                rows = await asyncio.to_thread(self.results.results, run_id)
                summary["comparison"] = comparison(summary, rows, spec.gates, repeat)
                summary["passed"] = summary["comparison"]["passed"]
            if baseline:
                from hub.evals.report import compare as against_baseline

                base = self.results.run(baseline)
                summary["baseline"] = against_baseline(summary, base, self.results.results(base["id"]))
            status = "incomplete" if summary["incomplete"] else "done"
            self.results.finish_run(run_id, status=status, passed=summary["passed"] and not summary["incomplete"], summary=summary)
        except BaseException as exc:
            self.results.finish_run(run_id, status="failed", passed=False, error=str(exc))
            raise
        return Outcome(run_id, summary)

    @staticmethod
    def _distinct(variants: list[Variant], compare: tuple[str, str]) -> None:
        roles = {v.role for v in variants}
        if roles != {"candidate", "against"}:
            from hub.evals.preflight import EvalReferenceError

            raise EvalReferenceError(None, [f"--candidate {compare[0]} and --against {compare[1]} are the same version"])

    async def _matrix(
        self, run_id: str, loaded: LoadedEval, variants: list[Variant], cases: list[tuple[int, Case]],
        repeat: int, cache: bool, concurrency: int,
    ) -> dict[str, Any]:
        from hub.llm import validation

        # jsonschema (every answer is checked, cached ones too) is imported off the event loop; the
        # client's transport (aiohttp or litellm) is imported likewise by the first request that
        # misses the cache (never, when every answer is cached), outside any request's latency
        await validation.warm()
        flow = self._flow(loaded) if loaded.spec.target.flow else None
        engines = {v.key: self._engine(v) for v in variants} if flow is not None else {}
        items = [(v, i, c, r) for i, c in cases for r in range(1, repeat + 1) for v in variants]
        gate = asyncio.Semaphore(concurrency)
        done = 0

        async def one(item: tuple[Variant, int, Case, int]) -> None:
            nonlocal done
            row = await self._item(run_id, loaded, *item, gate=gate, flow=flow, engines=engines, cache=cache)
            done += 1
            if self.progress is not None:
                self.progress(done, len(items), row)

        await asyncio.gather(*(one(item) for item in items))
        rows = await asyncio.to_thread(self.results.results, run_id)
        return summarize(loaded.spec, [v.to_dict() for v in variants], rows)

    # -- one case run ----------------------------------------------------------------------------

    async def _item(
        self, run_id: str, loaded: LoadedEval, variant: Variant, index: int, case: Case, repeat: int,
        *, gate: asyncio.Semaphore, flow: Any, engines: dict[str, Any], cache: bool,
    ) -> dict[str, Any]:
        """One case run: its calls (the target's and the judges') hold one of the ``gate``'s slots;
        storing the result does not, so the next case's call starts meanwhile."""
        async with gate:
            row = await self._observe(run_id, loaded, variant, index, case, repeat, flow=flow, engines=engines, cache=cache)
        row["id"] = await asyncio.to_thread(lambda: self.results.add_result(**row))
        return row

    async def _observe(
        self, run_id: str, loaded: LoadedEval, variant: Variant, index: int, case: Case, repeat: int,
        *, flow: Any, engines: dict[str, Any], cache: bool,
    ) -> dict[str, Any]:
        spec = loaded.spec
        case_id = spec.case_id(index)
        where = f"{variant.key}/{case_id}#{repeat}"
        obs = A.Observed(case=case, case_id=case_id, where=where)
        inputs: dict[str, Any]
        execution_id, trace_id = run_id, None
        usage: dict[str, Any] | None = None
        if flow is None:
            inputs = {**spec.vars, **case.vars}
            usage = await self._ask(run_id, loaded, variant, inputs, obs, CacheSpec(ttl=CACHE_TTL, sample=repeat) if cache else False)
            calls = await asyncio.to_thread(self.calls.calls, run_id, where)
        else:
            inputs = {**spec.vars, **case.inputs}
            execution_id, trace_id = await self._execute(engines[variant.key], flow, inputs, obs)
            calls = await asyncio.to_thread(self.calls.calls, execution_id) if execution_id else []
            obs.extra["turns"] = sum(1 for c in calls if c["status"] != "cached")
        spent = sum(c["cost"] or 0.0 for c in calls)
        obs.input_tokens = sum(c["input_tokens"] or 0 for c in calls)
        obs.output_tokens = sum(c["output_tokens"] or 0 for c in calls)
        cached = bool(calls) and all(c["cached"] for c in calls)
        if usage is not None:  # the model's time and cost, as measured when the answer was made
            obs.latency_ms, obs.cost = usage["latency_ms"], usage["cost"] + usage["cached_cost"]
        elif flow is None:
            obs.latency_ms, obs.cost = sum(c["latency_ms"] or 0.0 for c in calls), spent
        else:
            obs.latency_ms, obs.cost = obs.extra.pop("wall_ms", 0.0), spent
        models = CaseModels(
            self.client, self.calls, lambda w: self._context(run_id, loaded, variant, w),
            judge_model=spec.judge_model, embedding_model=spec.embedding_model, cache=cache, sample=repeat, cache_ttl=CACHE_TTL,
        )
        results = [await A.evaluate(a, obs, models) for a in [*spec.assert_, *case.assert_]]
        passed, score = A.case_grade(results, obs.error)
        judge_calls: list[int] = []
        if models.cost or models.cached:
            for kind in ("judge", "similar"):
                judge_calls += [c["id"] for c in await asyncio.to_thread(self.calls.calls, run_id, f"{where}/{kind}")]
        row = dict(
            run_id=run_id, variant=variant.key, prompt_name=variant.prompt, prompt_version=variant.version,
            prompt_hash=variant.content_hash, model=variant.model, case_id=case_id, case_index=index, repeat=repeat,
            tags=case.tags, input=inputs, expected=case.expected, output=obs.output, text=obs.text, error=obs.error,
            passed=passed, score=score, assertions=[r.to_dict() for r in results], latency_ms=obs.latency_ms,
            input_tokens=obs.input_tokens, output_tokens=obs.output_tokens, cost=obs.cost,
            judge_cost=models.cost, spent=spent + models.spent, cached=cached,
            call_ids=[c["id"] for c in calls] + judge_calls, execution_id=execution_id, trace_id=trace_id,
        )
        return row

    def _context(self, run_id: str, loaded: LoadedEval, variant: Variant, where: str) -> TaskContext:
        return TaskContext(
            execution_id=run_id, namespace="evals", flow_id=loaded.spec.name, task_id=where.split("/")[-1],
            path=where, attempt=1, settings=self.settings, store=self.store, logger=_quiet,
            execution={},  # no execution row to read: the case runs outside any (and has no budget)
            services={LLM_CLIENT.name: self.client, PROMPTS.name: FixedPrompts(self.registry, variant, self._resolved)},
        )

    async def _ask(
        self, run_id: str, loaded: LoadedEval, variant: Variant, values: dict[str, Any], obs: A.Observed, cache: CacheSpec | bool,
    ) -> dict[str, Any] | None:
        """Run the case through ``llm.chat``; returns its usage (None when it failed)."""
        params: dict[str, Any] = {"prompt": f"{variant.prompt}:{variant.version}", "vars": values, "cache": cache}
        if variant.model_override:
            params["model"] = variant.model_override
        if loaded.spec.max_repairs is not None:
            params["max_repairs"] = loaded.spec.max_repairs
        try:
            out = await Chat().run(self._context(run_id, loaded, variant, obs.where), ChatParams.model_validate(params))
        except Exception as exc:  # a failed call, or a broken eval: the case stores what happened
            obs.error = error_dict(exc)
            return None
        obs.output, obs.text = out["value"], out["text"]
        return dict(out["usage"])

    def _flow(self, loaded: LoadedEval) -> Any:
        from hub.flow.loader import load_file
        from hub.prompts.registry import use_prompts_dir

        target = loaded.spec.target.flow
        assert target is not None
        path = loaded.directory / target
        if not path.is_file():
            path = Path(target)
        with use_prompts_dir(self.settings.prompts_dir):
            return load_file(path)

    def _engine(self, variant: Variant) -> Any:
        from hub.engine.runner import Engine
        from hub.store.database import Database

        prompts = FixedPrompts(self.registry, variant, self._resolved)
        store = self.store.store() if isinstance(self.store, Database) else self.store  # the flow's engine needs it all
        return Engine(store, self.settings, services={LLM_CLIENT.name: self.client, PROMPTS.name: prompts})

    async def _execute(self, engine: Any, flow: Any, inputs: dict[str, Any], obs: A.Observed) -> tuple[str, str | None]:
        """Run the flow to its end (or a pause: an approval asked counts as a trajectory, not an
        error); the observed output is its outputs, the trajectory its step runs."""
        started = time.perf_counter()
        try:
            execution = await engine.execute(flow, inputs)
            drain = getattr(engine.queue, "drain", None)
            if drain is not None:
                await drain()
            execution = engine.store.get_execution(execution["id"])
        except HubError as exc:
            obs.error = error_dict(exc)
            return "", None
        obs.extra["wall_ms"] = (time.perf_counter() - started) * 1000
        if execution["state"] not in ("SUCCESS", "WARNING", "PAUSED"):
            obs.error = execution.get("error") or {"message": f"the execution ended {execution['state']}"}
        obs.output = execution.get("outputs")
        obs.extra["state"] = execution["state"]
        store = engine.store
        latest: dict[str, dict[str, Any]] = {}
        for row in await asyncio.to_thread(store.step_runs, execution["id"]):
            latest[row["path"]] = row  # the newest attempt of each step, in the order they started
        obs.extra["steps"] = [
            {"id": r["task_id"], "path": r["path"], "type": r["task_type"], "state": r["state"], "output": store.load_output(r)}
            for r in sorted(latest.values(), key=lambda r: r["id"]) if r["state"] != "SKIPPED"  # (its 'if' was false)
        ]
        obs.extra["approval"] = any(s["type"] == "approval" for s in obs.extra["steps"])
        return str(execution["id"]), execution.get("trace_id")
