"""The tables of online scoring: the evals attached to prompt labels (``online_evals``) and
their scores (``online_scores``). Apart from the scoring service (:mod:`hub.evals.online`), so a
process whose steps call no model never builds these table models."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import delete, func, insert, select, update

from hub.evals.tables import ONLINE_EVALS as EVALS
from hub.evals.tables import ONLINE_SCORES as SCORES
from hub.store.ensure import ensure_tables

if TYPE_CHECKING:
    from hub.evals.spec import LoadedEval


class OnlineStore:
    """``online_evals`` (attachments) and ``online_scores`` on the store's engine."""

    def __init__(self, engine: SqlEngine):
        self.engine = engine
        ensure_tables(engine, EVALS, SCORES)

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
                "scored": int(total or 0), "samples": len(window), "mean_score": mean_score(window),
                "pass_rate": mean_score(window, "passed"), "previous_mean_score": mean_score(before),
                "last_scored_at": window[0]["created_at"] if window else None,
            })
        return out


def mean_score(rows: list[dict[str, Any]], key: str = "score") -> float | None:
    return sum(float(r[key]) for r in rows) / len(rows) if rows else None
