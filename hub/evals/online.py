"""Online scoring: a share of a prompt label's production calls is scored by an eval's assertions.

An eval file with an ``online`` section is attached (``hub eval online attach FILE``); its spec
is stored, so every server and worker scores without the file. The ``llm.chat`` task offers each
answered call to the ``online_scoring`` service; a sampled one (``sample_rate``) is scored on a
background task of the event loop — never in the step, so scoring can neither slow nor fail it.
The eval's top-level ``assert`` run on the answer (production has no expected output: use checks
that need none — ``json_schema``, ``regex``, ``field`` with ``one_of`` / ``min`` / ``max``,
``python``, ``llm_rubric``, ``latency``, ``cost``). The score is stored with the call record id
(``online_scores``) and shown with the execution's trace; the judge's calls are recorded under
``online:<execution id>``, apart from the execution's own spend.

The mean over the newest ``window`` scores is watched: once it falls below ``alert_below``
(with at least ``min_samples`` scores) the eval is *alerting* and ``alert_flow`` is started, once;
it re-arms when the mean is back at or above the limit.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from hub.llm.services import LLM_CLIENT, ONLINE_SCORING

if TYPE_CHECKING:
    from hub.engine.runner import Engine
    from hub.evals.online_store import OnlineStore
    from hub.prompts.registry import Resolved
    from hub.tasks.base import TaskContext

SERVICE = ONLINE_SCORING.name
REFRESH_SECONDS = 5.0  # how stale the list of attached evals may be in a running process
MAX_PENDING = 200  # scorings waiting at once; beyond that, samples are dropped (and counted)

log = logging.getLogger(__name__)


class OnlineScoring:
    """The ``online_scoring`` service of a process: samples offered calls, scores them later."""

    def __init__(self, engine: Engine, rng: random.Random | None = None):
        self.engine = engine
        self.rng = rng or random.Random()
        self.store: OnlineStore | None = None
        self._attached: list[dict[str, Any]] = []
        self._read_at = float("-inf")
        self._pending: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def _evals(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        if now - self._read_at > REFRESH_SECONDS:
            if self.store is None:
                from hub.evals.online_store import OnlineStore

                self.store = OnlineStore(self.engine.store.engine)
            self._attached = [r for r in self.store.attached() if r["enabled"]]
            self._read_at = now
        return self._attached

    def refresh(self) -> None:
        """Read the attached evals again at the next offer (after attaching one)."""
        self._read_at = float("-inf")

    def offer(self, ctx: TaskContext, resolved: Resolved, values: dict[str, Any], out: dict[str, Any], call_id: int | None) -> None:
        """Called by ``llm.chat`` after an answer: sample it for every eval attached to the label
        it was resolved through; returns at once."""
        from hub.prompts.spec import parse_reference

        label = parse_reference(resolved.reference).label
        for row in self._evals():
            if row["prompt_name"] != resolved.name or row["label"] != label or self.rng.random() >= row["sample_rate"]:
                continue
            if len(self._pending) >= MAX_PENDING:
                self.dropped += 1
                continue
            call = {"execution_id": ctx.execution_id, "path": ctx.path, "call_id": call_id, "version": resolved.version,
                    "vars": dict(values), "output": out}
            task = asyncio.get_running_loop().create_task(self._score(row, call), name=f"online score {row['name']}")
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for the scorings under way (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _score(self, row: dict[str, Any], call: dict[str, Any]) -> None:
        try:
            await self._score_call(row, call)
        except Exception:  # a scoring problem is logged; it is never the production step's
            log.exception("online scoring of %s failed", row["name"])

    async def _score_call(self, row: dict[str, Any], call: dict[str, Any]) -> None:
        from hub.evals import assertions as A
        from hub.evals.judges import CaseModels
        from hub.evals.spec import Case, EvalSpec
        from hub.llm.client import default_client
        from hub.llm.records import CallLog

        assert self.store is not None
        spec = EvalSpec.model_validate(row["spec"])
        out = call["output"]
        obs = A.Observed(case=Case(vars=call["vars"]), case_id=str(call["call_id"]), where=f"{call['path']}/score")
        obs.output, obs.text = out["value"], out["text"]
        obs.latency_ms, obs.cost = out["usage"]["latency_ms"], out["usage"]["cost"] + out["usage"]["cached_cost"]
        client = self.engine.services.get(LLM_CLIENT.name) or default_client()
        models = CaseModels(client, CallLog.for_store(self.engine.store), lambda where: self._context(row, call, client, where),
                            judge_model=spec.judge_model, embedding_model=spec.embedding_model, cache=False)
        results = [await A.evaluate(a, obs, models) for a in spec.assert_]
        passed, score = A.case_grade(results, None)
        trace_id = await asyncio.to_thread(self._trace_id, call["execution_id"])
        await asyncio.to_thread(lambda: self.store.add_score(  # type: ignore[union-attr]
            eval_name=row["name"], call_id=call["call_id"], execution_id=call["execution_id"], path=call["path"],
            trace_id=trace_id, prompt_name=row["prompt_name"], prompt_version=call["version"], model=out.get("model"),
            passed=passed, score=score, assertions=[r.to_dict() for r in results], cost=models.spent,
        ))
        await self._watch(row)

    def _trace_id(self, execution_id: str) -> str | None:
        try:
            return self.engine.store.get_execution(execution_id).get("trace_id")
        except Exception:
            return None

    def _context(self, row: dict[str, Any], call: dict[str, Any], client: Any, where: str) -> TaskContext:
        from hub.tasks.base import TaskContext

        return TaskContext(
            execution_id=f"online:{call['execution_id']}", namespace="evals", flow_id=row["name"], task_id="judge",
            path=where, attempt=1, settings=self.engine.settings, store=self.engine.store, logger=log,
            services={LLM_CLIENT.name: client},  # not this service: the judge's own answer is not sampled
        )

    async def _watch(self, row: dict[str, Any]) -> None:
        limit = row["alert_below"]
        if limit is None or self.store is None:
            return
        from hub.evals.online_store import mean_score

        window = await asyncio.to_thread(self.store.scores, row["name"], row["window"])
        mean = mean_score(window)
        if mean is None or len(window) < row["min_samples"]:
            return
        if mean < limit:
            if await asyncio.to_thread(self.store.set_alerting, row["name"], True):
                log.warning("online eval %s: mean score %.3f over %d calls is below %g", row["name"], mean, len(window), limit)
                await self._alert(row, mean, len(window))
        else:
            await asyncio.to_thread(self.store.set_alerting, row["name"], False)

    async def _alert(self, row: dict[str, Any], mean: float, samples: int) -> None:
        ref = row["alert_flow"]
        if not ref:
            return
        payload = {"eval": row["name"], "prompt": row["prompt_name"], "label": row["label"], "mean_score": mean,
                   "threshold": row["alert_below"], "samples": samples}
        namespace, flow_id = self.engine.catalog.resolve_ref(ref, "default")
        _, flow, _ = self.engine.catalog.latest(namespace, flow_id)
        declared = {spec.id for spec in flow.inputs}
        await self.engine.start(
            ref, {k: v for k, v in payload.items() if k in declared},
            trigger={"type": "online_eval", **payload}, labels={"online_eval": row["name"]},
        )


def install(engine: Engine) -> OnlineScoring:
    """The process's scoring service (``engine.services`` under ``ONLINE_SCORING``); cheap until an
    eval is attached."""
    existing = engine.services.get(SERVICE)
    if isinstance(existing, OnlineScoring):
        return existing
    service = OnlineScoring(engine)
    engine.services[SERVICE] = service
    return service
