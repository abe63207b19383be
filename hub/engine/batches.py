"""Store calls of many executions gathered into one (group commit on a server database).

A worker runs many executions at once, and each of them claims its row, then ends it; a server
starts many at once, and each start is an INSERT, a commit and a submit to the queue. Each on its
own is a hand-off to a thread, a pool checkout and round trips. :class:`Batched` gathers the calls
made while one is being written and makes them one call for the next batch (one thread hand-off,
one transaction, one statement for many rows). A lone call is made at once, so there is no waiting
for a batch to fill when there is no load.

Nothing is acknowledged before it is committed: each caller's await returns only once the
transaction that holds its write has committed, so an execution goes on (its events, what waits
for its end, the next job) only after its write is durable. A process killed while a batch is
being written loses only writes nobody had heard of: those executions are still RUNNING with a
dead owner, and are resumed after their last committed step. A caller that is cancelled while it
waits does not withdraw its write (as a call in a thread would not be withdrawn either).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from hub.core.threads import ThreadPool

Item = TypeVar("Item")
Result = TypeVar("Result")

DB_THREADS = ThreadPool()
"""Threads for the engine's store calls on a server database (claims, ends, starts, a step's
writes): a pool apart from the one ``python`` steps' sync functions run on, so user code that
blocks every thread of that pool never holds up the store; cheaper than ``asyncio.to_thread``
(see :mod:`hub.core.threads`)."""

MAX_BATCH = 128


def in_thread(many: Callable[[list[Item]], list[Any]]) -> Callable[[list[Item]], Awaitable[list[Any]]]:
    """``many`` (a blocking store call) as :class:`Batched` takes it: run in :data:`DB_THREADS`,
    so the event loop goes on (and the next batch gathers) during its round trips and commit."""

    async def call(items: list[Item]) -> list[Any]:
        return await DB_THREADS.run(many, items)  # type: ignore[no-any-return]

    return call


class Batched(Generic[Item, Result]):
    """``await batched(item)``: ``many`` awaited with the items gathered meanwhile, answering each
    with its result, or an exception that is raised to its caller alone.

    ``many`` returns one result per item, in order; what it raises reaches every caller of the
    batch. With ``key``, items with the same key (one execution's) never share a batch: the later
    waits for the next one, so writes of one execution stay in order."""

    def __init__(
        self,
        many: Callable[[list[Item]], Awaitable[list[Any]]],
        key: Callable[[Item], Hashable] | None = None,
        max_batch: int = MAX_BATCH,
    ):
        self.many = many
        self.key = key
        self.max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0  # calls of ``many`` made (how well calls were gathered)

    async def __call__(self, item: Item) -> Result:
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="batched store writes")
        return await done

    @property
    def idle(self) -> bool:
        """Nothing waits and no batch is being written."""
        return not self._pending and (self._writer is None or self._writer.done())

    def _next_batch(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        if self.key is None:
            taken, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            return taken
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        later: list[tuple[Item, asyncio.Future[Result]]] = []
        keys: set[Hashable] = set()
        for entry in self._pending:
            key = self.key(entry[0])
            if key in keys or len(batch) >= self.max_batch:
                later.append(entry)
            else:
                keys.add(key)
                batch.append(entry)
        self._pending = later
        return batch

    async def _write(self) -> None:
        while self._pending:
            batch = self._next_batch()
            try:
                self.batches += 1
                results: list[Any] = await self.many([item for item, _ in batch])
            except Exception as exc:  # the database is away: every caller of the batch hears it
                results = [exc] * len(batch)
            except BaseException:  # cancelled (the loop is closing): nobody is left to answer
                for _, done in batch + self._pending:
                    done.cancel()
                self._pending = []
                raise
            if len(results) != len(batch):  # a broken ``many``: every caller hears it, none waits forever
                results = [RuntimeError(f"a batch of {len(batch)} writes gave {len(results)} results")] * len(batch)
            for (_, done), result in zip(batch, results, strict=True):
                if done.done():  # its caller went away (cancelled)
                    continue
                if isinstance(result, BaseException):
                    done.set_exception(result)
                else:
                    done.set_result(result)
