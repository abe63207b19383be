"""Stored eval runs and their results, on the store's engine."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import Engine, insert, select, update

from hub.core import keyset
from hub.errors import NotFound
from hub.evals.tables import EVAL_PROMOTIONS as PROMOTIONS
from hub.evals.tables import EVAL_RESULTS as RESULTS
from hub.evals.tables import EVAL_RUNS as RUNS
from hub.store.ensure import ensure_tables

RUN_PREFIX = "ev_"


def new_run_id() -> str:
    return RUN_PREFIX + uuid.uuid4().hex[:16]


class EvalStore:
    """Writes and reads ``eval_runs``, ``eval_results`` and ``eval_promotions``."""

    def __init__(self, engine: Engine):
        self.engine = engine
        ensure_tables(engine, RUNS, RESULTS, PROMOTIONS)

    def create_run(self, run_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(RUNS).values(id=run_id, status="running", created_at=time.time(), **values))

    def finish_run(self, run_id: str, **values: Any) -> None:
        values.setdefault("finished_at", time.time())
        with self.engine.begin() as conn:
            conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(**values))

    def add_result(self, **values: Any) -> int:
        values.setdefault("created_at", time.time())
        with self.engine.begin() as conn:
            return int(conn.execute(insert(RESULTS).values(**values)).inserted_primary_key[0])  # type: ignore[index]

    def run(self, run_id: str) -> dict[str, Any]:
        """A run by id or unambiguous id prefix."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(RUNS).where(RUNS.c.id.startswith(run_id, autoescape=True)).limit(2)).all()
        exact = [r for r in rows if r.id == run_id]
        if exact or len(rows) == 1:
            return dict((exact or rows)[0]._mapping)
        if not rows:
            raise NotFound(f"there is no eval run {run_id!r}; see 'hub eval list'")
        raise NotFound(f"eval run prefix {run_id!r} is ambiguous; give more characters")

    def runs(self, name: str | None = None, limit: int = 20, after: list[Any] | None = None) -> list[dict[str, Any]]:
        """Runs newest first, after a page's last ``(created_at, id)``."""
        query = select(RUNS)
        if name:
            query = query.where(RUNS.c.name == name)
        order = ((RUNS.c.created_at, True), (RUNS.c.id, True))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(keyset.page(query, order, after, limit))]

    def results(
        self, run_id: str, variant: str | None = None, limit: int | None = None, after: list[Any] | None = None,
    ) -> list[dict[str, Any]]:
        """A run's results by variant, case and repeat (a page after ``(variant, case_index, repeat, id)``)."""
        query = select(RESULTS).where(RESULTS.c.run_id == run_id)
        if variant is not None:
            query = query.where(RESULTS.c.variant == variant)
        order = ((RESULTS.c.variant, False), (RESULTS.c.case_index, False), (RESULTS.c.repeat, False), (RESULTS.c.id, False))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(keyset.page(query, order, after, limit))]

    def record_promotion(self, **values: Any) -> int:
        values.setdefault("created_at", time.time())
        with self.engine.begin() as conn:
            return int(conn.execute(insert(PROMOTIONS).values(**values)).inserted_primary_key[0])  # type: ignore[index]

    def promotions(
        self, prompt_name: str | None = None, limit: int | None = None, after: list[Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Promotions, oldest first (a page after the promotion ``after[0]``)."""
        query = select(PROMOTIONS)
        if prompt_name:
            query = query.where(PROMOTIONS.c.prompt_name == prompt_name)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(keyset.page(query, ((PROMOTIONS.c.id, False),), after, limit))]
