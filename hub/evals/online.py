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

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import delete, func, insert, select, update

from hub.evals.tables import OnlineEval, OnlineScore
from hub.llm.services import LLM_CLIENT, ONLINE_SCORING
from hub.llm.tables import ensure_tables

if TYPE_CHECKING:
    from hub.engine.runner import Engine
    from hub.evals.spec import LoadedEval
    from hub.prompts.registry import Resolved
    from hub.tasks.base import TaskContext

SERVICE = ONLINE_SCORING.name
EVALS = OnlineEval.__table__  # type: ignore[attr-defined]
SCORES = OnlineScore.__table__  # type: ignore[attr-defined]
REFRESH_SECONDS = 5.0  # how stale the list of attached evals may be in a running process
MAX_PENDING = 200  # scorings waiting at once; beyond that, samples are dropped (and counted)

log = logging.getLogger(__name__)


class OnlineStore:
    """``online_evals`` (attachments) and ``online_scores`` on the store's engine."""

    def __init__(self, engine: SqlEngine):
        self.engine = engine
        ensure_tables(engine, OnlineEval, OnlineScore)

    def attach(self, loaded: LoadedEval) -> dict[str, Any]:
        """Attach (or update) an eval file with an ``online`` section; returns the row."""
        spec = loaded.spec
        if spec.online is None or spec.target.prompt is None:
            raise ValueError(f"{loaded.file}: online scoring needs a prompt target and an 'online:' section")
        now = time.time()
        o = spec.online
        values = dict(
            prompt_name=spec.target.prompt, label=o.label, sample_rate=o.sample_rate, window=o.window,
            alert_below=o.alert_below, min_samples=o.min_samples, alert_flow=o.alert_flow,
            # unset keys stay unset: a check tells "equals: null" from no equals at all
            spec=spec.model_dump(mode="json", by_alias=True, exclude_unset=True), file=loaded.file, enabled=True, updated_at=now,
        )
        with self.engine.begin() as conn:
            found = conn.execute(select(EVALS.c.id).where(EVALS.c.name == spec.name)).first()
            if found is None:
                conn.execute(insert(EVALS).values(name=spec.name, created_at=now, alerting=False, **values))
            else:
                conn.execute(update(EVALS).where(EVALS.c.name == spec.name).values(**values))
        return self.get(spec.name)

    def detach(self, name: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(delete(EVALS).where(EVALS.c.name == name)).rowcount == 0:
                from hub.errors import NotFound

                raise NotFound(f"no eval {name!r} is attached; see 'hub eval online'")

    def get(self, name: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(EVALS).where(EVALS.c.name == name)).first()
        if row is None:
            from hub.errors import NotFound

            raise NotFound(f"no eval {name!r} is attached; see 'hub eval online'")
        return dict(row._mapping)

    def attached(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(EVALS).order_by(EVALS.c.name))]

    def add_score(self, **values: Any) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(insert(SCORES).values(created_at=time.time(), **values)).inserted_primary_key[0])  # type: ignore[index]

    def scores(
        self, name: str | None = None, limit: int = 100, execution_id: str | None = None, before: int | None = None,
    ) -> list[dict[str, Any]]:
        """The newest scores first (of one eval, one execution, or older than score id ``before``)."""
        query = select(SCORES).order_by(SCORES.c.id.desc()).limit(limit)
        if name is not None:
            query = query.where(SCORES.c.eval_name == name)
        if execution_id is not None:
            query = query.where(SCORES.c.execution_id == execution_id)
        if before is not None:
            query = query.where(SCORES.c.id < before)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def set_alerting(self, name: str, alerting: bool) -> bool:
        """Flip the alert state; True when this call flipped it (so an alert fires once)."""
        values: dict[str, Any] = {"alerting": alerting}
        if alerting:
            values["alerted_at"] = time.time()
        with self.engine.begin() as conn:
            done = conn.execute(update(EVALS).where(EVALS.c.name == name, EVALS.c.alerting == (not alerting)).values(**values))
            return bool(done.rowcount)

    def status(self) -> list[dict[str, Any]]:
        """Per attached eval: the window's mean and size, the window before it, the alert state."""
        out = []
        for row in self.attached():
            window = self.scores(row["name"], row["window"])
            before = self.scores(row["name"], row["window"], before=window[-1]["id"]) if window else []
            with self.engine.connect() as conn:
                total = conn.execute(select(func.count()).where(SCORES.c.eval_name == row["name"])).scalar()
            out.append({
                **{k: row[k] for k in ("name", "prompt_name", "label", "sample_rate", "window", "alert_below",
                                      "min_samples", "alert_flow", "alerting", "alerted_at", "file")},
                "scored": int(total or 0), "samples": len(window), "mean_score": _mean(window),
                "pass_rate": _mean(window, "passed"), "previous_mean_score": _mean(before),
                "last_scored_at": window[0]["created_at"] if window else None,
            })
        return out


def _mean(rows: list[dict[str, Any]], key: str = "score") -> float | None:
    return sum(float(r[key]) for r in rows) / len(rows) if rows else None


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
        models = CaseModels(client, CallLog(self.engine.store.engine), lambda where: self._context(row, call, client, where),
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
        window = await asyncio.to_thread(self.store.scores, row["name"], row["window"])
        mean = _mean(window)
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
