"""Creating executions in batches (group commit).

Each start must be durable before its caller hears of it (a webhook's 202, an API's 201), which
costs a database round trip and a commit. Under load, executions started while one batch is being
written wait for the next: one multi-row INSERT, one commit and one submit to the queue for all of
them (:class:`hub.engine.batches.Batched`). A lone start is written at once, so batching adds no
latency when there is no load.

On SQLite (one writer, commits in microseconds) each start is written inline.

A batch that breaks a constraint, or whose writes along an execution meet a :class:`Conflict`
(an idempotency key already taken), is retried one row at a time, so every caller gets its own
answer (a duplicate execution id fails only the start that repeated it); any other database error
reaches every caller of the batch at once.

Once an execution is committed it is accepted: if the queue cannot take it (Redis refuses, or does
not answer within ``SUBMIT_TIMEOUT``), the start still succeeds and a warning says so; the
execution waits QUEUED in the store, where the sweep of any worker finds it and submits it again
(``hub.service.worker``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import IntegrityError

from hub.engine.batches import DB_THREADS, Batched
from hub.store.store import AlongWrite, Conflict, Store

log = logging.getLogger(__name__)

SUBMIT_TIMEOUT = 5.0  # seconds a queue may take to accept a batch before the starts go on without it

Submit = Callable[[list[str]], Awaitable[None]]
Start = tuple[dict[str, Any], bool, AlongWrite | None]
"""One start: the execution's row, whether to submit it, the write along with it."""


class Starts:
    def __init__(self, store: Store, submit: Submit):
        self.store = store
        self.submit = submit
        # no key: each start is an execution of its own (a repeated id fails alone, see _insert)
        self.batched: Batched[Start, None] = Batched(self._many)

    async def create(self, row: dict[str, Any], enqueue: bool, along: AlongWrite | None = None) -> None:
        """Insert ``row`` (an execution), with ``along`` in the same transaction, and, with
        ``enqueue``, submit it; returns once both hold."""
        if self.store.is_sqlite:  # one local writer and microsecond commits: nothing to gather
            self.store.insert_executions([row], [along] if along else ())
            if enqueue:
                await self._submit([row["id"]])
            return
        await self.batched((row, enqueue, along))

    async def _many(self, batch: list[Start]) -> list[Exception | None]:
        """Write a batch of starts, then submit those committed that ask for it (one call)."""
        failed = await self._insert([(row, along) for row, _, along in batch])
        submitted = [row["id"] for (row, enqueue, _), error in zip(batch, failed, strict=True)
                     if enqueue and error is None]
        if submitted:
            await self._submit(submitted)
        return failed

    async def _submit(self, execution_ids: list[str]) -> None:
        """Queue committed executions; a queue that fails loses nothing (see the module doc)."""
        try:
            async with asyncio.timeout(SUBMIT_TIMEOUT):  # (inline, unlike wait_for: a local queue
                await self.submit(execution_ids)        # hands over before the caller goes on)
        except Exception as exc:  # refused, or no answer (TimeoutError)
            log.warning("%d execution(s) stay QUEUED in the store, the queue refused them (%s: %s); "
                        "a worker's sweep will submit them", len(execution_ids), type(exc).__name__, exc)

    async def _insert(self, rows: list[tuple[dict[str, Any], AlongWrite | None]]) -> list[Exception | None]:
        """Insert ``rows`` (each with its write along); per row, None or the error that row alone met."""
        try:
            await self._call(self.store.insert_executions, [row for row, _ in rows], [a for _, a in rows if a])
            return [None] * len(rows)
        except (IntegrityError, Conflict):  # one row's fault (a duplicate id): find it, keep the others
            if len(rows) == 1:
                raise
        errors: list[Exception | None] = []
        for row, along in rows:
            try:
                await self._call(self.store.insert_executions, [row], [along] if along else [])
                errors.append(None)
            except Exception as exc:
                errors.append(exc)
        return errors

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        # in a thread, so the event loop keeps serving requests (whose starts gather for the next
        # batch) during the round trips and the commit
        return await DB_THREADS.run(fn, *args)
