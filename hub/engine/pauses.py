"""Pause as data: a paused step holds a resume token and the outside world ends it.

A task that waits for the outside world (an approval, an event, an agent's approved tool call)
reads ``ctx.resume_token``, hands it to whoever will answer, and raises
:class:`hub.errors.Paused`. The answer arrives as ``await engine.complete(token, output)`` (or
``error=``): the step ends with that output, exactly once, and the execution continues after it.
Nobody polls, and the task is not run again to read its own state.

Exactly once, whatever races: ending the step is a compare-and-set on its row (only the newest
attempt of that step, still RUNNING or PAUSED, with that token). An answer that comes before the
task has finished pausing (decide-before-pause) ends the step while it is RUNNING; the task's
pause then finds it ended and the walk goes on with its output without pausing. An answer that
comes while the execution is still being written PAUSED is seen by the walk's check after that
write. Only one of the two wakes the execution (PAUSED -> RUNNING is itself a compare-and-set).
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from sqlalchemy import and_, exists, select, update

from hub.engine.states import State
from hub.store.store import EXECUTIONS, STEPS, Store

TOKEN_KEY = "resume_token"
COMPLETED_KEY = "completed"
"""Set on a step run ended by :func:`end_step`: a FAILED one is final (a resume does not run it again)."""


def new_token(step_id: int) -> str:
    """A new resume token for the step run ``step_id`` (to be stored on its row's data)."""
    return f"{step_id}.{secrets.token_urlsafe(18)}"


def issue_token(store: Store, step_id: int) -> str:
    """A new resume token for the step run ``step_id``, stored on its row."""
    token = new_token(step_id)
    with store.engine.begin() as conn:
        row = conn.execute(select(STEPS.c.data).where(STEPS.c.id == step_id)).first()
        data = dict((row[0] if row else None) or {})
        data[TOKEN_KEY] = token
        conn.execute(update(STEPS).where(STEPS.c.id == step_id).values(data=data))
    return token


def pause_step(store: Store, step_id: int, data: dict[str, Any]) -> dict[str, Any] | None:
    """Mark the step run PAUSED unless it was completed meanwhile: None when it paused, else the
    completed row (its state, output and error are the step's result)."""
    with store.engine.begin() as conn:
        current = conn.execute(select(STEPS.c.data).where(STEPS.c.id == step_id)).first()
        kept = {k: v for k, v in ((current[0] if current else None) or {}).items() if k == TOKEN_KEY}
        done = conn.execute(
            update(STEPS).where(STEPS.c.id == step_id, STEPS.c.state == State.RUNNING)
            .values(state=State.PAUSED, data={**data, **kept})
        )
        if done.rowcount == 1:
            return None
        row = conn.execute(select(STEPS).where(STEPS.c.id == step_id)).first()
    return dict(row._mapping) if row is not None else None


def _newest_attempt(step_id: int) -> Any:
    newer = STEPS.alias()
    mine = select(STEPS.c.execution_id, STEPS.c.path).where(STEPS.c.id == step_id).subquery()
    return ~exists().where(and_(newer.c.execution_id == mine.c.execution_id, newer.c.path == mine.c.path,
                                newer.c.id > step_id))


def end_step(store: Store, token: str, output: Any, error: dict[str, Any] | None) -> tuple[str, str] | None:
    """The compare-and-set that ends a paused (or pausing) step: ``(execution id, state it had)``
    when this call ended it, None when the token is unknown or the step already ended."""
    step_part, _, _ = token.partition(".")
    if not step_part.isdigit():
        return None
    step_id = int(step_part)
    with store.engine.connect() as conn:
        row = conn.execute(select(STEPS.c.execution_id, STEPS.c.data).where(STEPS.c.id == step_id)).first()
    if row is None or not hmac.compare_digest(str((row.data or {}).get(TOKEN_KEY, "")), token):
        return None
    values: dict[str, Any] = {"state": State.FAILED if error else State.SUCCESS, "error": error,
                              "ended_at": time.time(), "data": {**(row.data or {}), COMPLETED_KEY: True}}
    values.update(store.output_values(output, row.execution_id))
    for before in (State.PAUSED, State.RUNNING, State.PAUSED):  # it may move RUNNING -> PAUSED meanwhile
        with store.engine.begin() as conn:
            done = conn.execute(
                update(STEPS).where(STEPS.c.id == step_id, STEPS.c.state == before, _newest_attempt(step_id))
                .values(**values)
            )
        if done.rowcount == 1:
            return row.execution_id, before
    return None


def set_data(store: Store, step_id: int, data: dict[str, Any]) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(STEPS).where(STEPS.c.id == step_id).values(data=data))


def completed_meanwhile(store: Store, step_ids: list[int]) -> bool:
    """Whether any of the step runs a walk left PAUSED has been ended since."""
    if not step_ids:
        return False
    with store.engine.connect() as conn:
        found = conn.execute(
            select(STEPS.c.id).where(STEPS.c.id.in_(step_ids), STEPS.c.state != State.PAUSED).limit(1)
        ).first()
    return found is not None


def still_paused(store: Store, step_ids: list[int]) -> list[int]:
    """Those of ``step_ids`` whose run is PAUSED (the child steps a pausing step waits on)."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(STEPS.c.id).where(STEPS.c.id.in_(step_ids), STEPS.c.state == State.PAUSED))
        return [row[0] for row in rows]


def claim_paused(store: Store, execution_id: str) -> bool:
    """PAUSED -> RUNNING for the one caller that wakes the execution."""
    with store.engine.begin() as conn:
        done = conn.execute(
            update(EXECUTIONS).where(EXECUTIONS.c.id == execution_id, EXECUTIONS.c.state == State.PAUSED)
            .values(state=State.RUNNING, resume_at=None)
        )
    return done.rowcount == 1


def paused_steps(store: Store, execution_id: str) -> list[dict[str, Any]]:
    """The PAUSED step runs of an execution (what a timer may be due to end)."""
    columns = (STEPS.c.id, STEPS.c.task_type, STEPS.c.data)
    with store.auto.connect() as conn:
        rows = conn.execute(select(*columns).where(STEPS.c.execution_id == execution_id,
                                                   STEPS.c.state == State.PAUSED))
        return [dict(row._mapping) for row in rows]


def waiting_step(store: Store, execution_id: str, path: str) -> dict[str, Any] | None:
    """The data of the newest run of step ``path`` while it waits (RUNNING on its way to pausing,
    or PAUSED) holding a resume token; None otherwise."""
    with store.auto.connect() as conn:
        row = conn.execute(
            select(STEPS.c.state, STEPS.c.data).where(STEPS.c.execution_id == execution_id, STEPS.c.path == path)
            .order_by(STEPS.c.id.desc()).limit(1)
        ).first()
    if row is None or row.state not in (State.RUNNING, State.PAUSED) or not (row.data or {}).get(TOKEN_KEY):
        return None
    return dict(row.data)
