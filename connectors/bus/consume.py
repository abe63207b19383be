"""The consumer loop behind every event-bus trigger (kafka, nats, amqp, mqtt), written once.

A bus says how to talk to its broker through a small :class:`Source` (connect, fetch, ack,
dead-letter, close). Everything else lives here:

- each message becomes ``trigger`` data (:meth:`Message.data`: the body parsed as JSON when it
  is JSON, else text; plus the bus's own fields: key, headers, topic, offset, ...);
- ``condition`` skips a message (it is acknowledged, nothing starts);
- the execution's idempotency key is the bus's identity of the message (Kafka
  ``topic/partition/offset``, the NATS stream sequence, ...) or the trigger's ``key`` template,
  so a message delivered again after a crash finds its execution instead of starting another;
- ``batch: {size, window}`` starts one execution per batch (``trigger.messages``);
- a message that cannot start a run (its inputs fail the flow's types, an input expression
  fails) goes to the dead-letter destination with the error, then is acknowledged;
- messages are acknowledged only after their executions are committed (``ctx.fire`` returns);
- backpressure: while the flow's concurrency limit is reached (running + queued executions),
  nothing is fetched, and a fetch never takes more than the room left;
- the broker going away (or the database) closes the connection, records the error in the
  trigger's state (``GET /v1/triggers``) and reconnects with exponential backoff; whatever was
  not acknowledged is delivered again and deduplicated by the idempotency key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import Field

from hub.core.durations import Duration
from hub.core.errors import HubError
from hub.core.models import Strict, TriggerBase

log = logging.getLogger(__name__)

ACTIVE_STATES = ("QUEUED", "RUNNING")


class BatchSpec(Strict):
    """Start one execution per batch of messages instead of one per message."""

    size: int = Field(ge=1, le=10_000, description="Messages per execution, at most.")
    window: Duration = Field(1.0, description="Start with fewer messages once this much time passed since the first.")


class BusTriggerConfig(TriggerBase):
    """Keys every bus trigger accepts, next to its own connection keys."""

    condition: str | None = Field(None, description="Skip a message unless this expression (over `trigger`) is true.")
    key: str | None = Field(
        None, description="Idempotency key of a message (a template over `trigger`); default: the bus's own message identity."
    )
    batch: BatchSpec | None = None
    dead_letter: str | None = Field(
        None, description="Where a message that cannot start a run goes, with its error (topic, subject or exchange)."
    )
    fetch_size: int = Field(100, ge=1, le=10_000, description="Messages fetched per round, at most.")


class TriggerContextLike(Protocol):
    """What the loop uses of :class:`hub.triggers.context.TriggerContext`."""

    bound: Any
    engine: Any
    stopping: asyncio.Event

    def ok(self) -> None: ...

    def failed(self, message: str) -> None: ...

    async def fire_many(self, events: list[tuple[dict[str, Any], str]]) -> list[tuple[str, bool] | HubError]: ...


@dataclass
class Message:
    """One message as the bus delivered it. ``event_key`` is the bus's identity of the message
    (stable across redeliveries); ``fields`` are the bus's own parts of the trigger data;
    ``handle`` is whatever the bus needs to acknowledge it."""

    payload: bytes
    event_key: str
    fields: dict[str, Any] = field(default_factory=dict)
    handle: Any = None

    def data(self) -> dict[str, Any]:
        body, encoding = parse_body(self.payload)
        out = {"body": body, **self.fields}
        if encoding != "json":
            out["body_encoding"] = encoding
        return out


def parse_body(payload: bytes) -> tuple[Any, str]:
    """The body as JSON when it parses, else UTF-8 text, else base64 (with the encoding used)."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode(), "base64"
    try:
        return json.loads(text), "json"
    except ValueError:
        return text, "text"


class Source(Protocol):
    """How one bus talks to its broker. The loop calls ``connect`` then ``fetch``/``ack`` in
    rounds; ``close`` after an error (then ``connect`` again) and at the end."""

    async def connect(self) -> None: ...

    async def fetch(self, max_count: int, timeout: float) -> list[Message]:
        """Up to ``max_count`` messages; fewer (or none) after ``timeout`` seconds."""
        ...

    async def ack(self, messages: list[Message]) -> None:
        """Every message given was started, skipped or dead-lettered: settle them with the broker."""
        ...

    async def dead_letter(self, message: Message, error: str) -> None:
        """Put ``message`` in the dead-letter destination with ``error``, durably (broker-acknowledged)."""
        ...

    async def close(self) -> None: ...


class Backoff:
    """Exponential waits between reconnects, with jitter; :meth:`reset` after a success."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, factor: float = 2.0, jitter: float = 0.2):
        self.initial, self.maximum, self.factor, self.jitter = initial, maximum, factor, jitter
        self.attempt = 0

    def next(self) -> float:
        wait = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return wait * (1 + random.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        self.attempt = 0


async def run_source(ctx: TriggerContextLike, source: Source, backoff: Backoff | None = None) -> None:
    """Consume from ``source`` until ``ctx.stopping`` is set (or the task is cancelled)."""
    backoff = backoff or Backoff()
    name = ctx.bound.name
    reported = None  # the same failure again is logged at debug level (GET /v1/triggers keeps it)
    while not ctx.stopping.is_set():
        try:
            await source.connect()
            ctx.ok()
            log.info("trigger %s: connected", name)
            backoff.reset()
            reported = None
            await _consume(ctx, source)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            level = logging.DEBUG if message == reported else logging.WARNING
            log.log(level, "trigger %s: %s; reconnecting with backoff", name, message)
            reported = message
            ctx.failed(message)
        finally:
            with contextlib.suppress(Exception):
                await source.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(backoff.next()):
                await ctx.stopping.wait()


async def _consume(ctx: TriggerContextLike, source: Source) -> None:
    config = ctx.bound.trigger
    while not ctx.stopping.is_set():
        room = await _room(ctx)
        if room == 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await ctx.stopping.wait()
            continue
        messages = await _collect(ctx, source, config, room)
        if not messages:
            continue
        await deliver(ctx, source, messages)
        await source.ack(messages)


async def _room(ctx: TriggerContextLike) -> int:
    """How many executions the flow can take now (its concurrency limit minus running and queued)."""
    config, flow = ctx.bound.trigger, ctx.bound.flow
    wanted = config.batch.size if config.batch else config.fetch_size
    if flow.concurrency is None:
        return int(wanted)
    limit = flow.concurrency.limit
    active = await ctx.engine.db(
        ctx.engine.store.list_executions, namespace=flow.namespace, flow_id=flow.id, states=ACTIVE_STATES, limit=limit
    )
    free = max(0, limit - len(active))
    return int(wanted) if config.batch and free else min(int(wanted), free)


async def _collect(ctx: TriggerContextLike, source: Source, config: Any, room: int) -> list[Message]:
    if config.batch is None:
        return await source.fetch(room, 1.0)
    messages: list[Message] = []
    loop = asyncio.get_running_loop()
    deadline: float | None = None
    while len(messages) < config.batch.size and not ctx.stopping.is_set():
        left = 1.0 if deadline is None else deadline - loop.time()
        if left <= 0:
            break
        got = await source.fetch(config.batch.size - len(messages), left)
        if got and deadline is None:
            deadline = loop.time() + config.batch.window
        messages.extend(got)
        if not messages:
            break  # nothing within a second: let the caller check stopping and capacity
    return messages


async def deliver(ctx: TriggerContextLike, source: Source, messages: list[Message]) -> None:
    """Start the executions of ``messages`` (one each, or one per batch) and dead-letter those that
    cannot start. When this returns every message is started, skipped or dead-lettered; an
    unexpected error (the database is away) propagates and nothing is acknowledged."""
    config = ctx.bound.trigger
    expr = ctx.engine.expr
    chosen: list[tuple[Message, dict[str, Any], str]] = []
    for message in messages:
        data = message.data()
        try:
            if config.condition is not None and not expr.condition(
                config.condition, {"trigger": data}, f"triggers.{config.id}.condition"
            ):
                continue
            key = _key(ctx, message, data)
        except HubError as exc:
            await source.dead_letter(message, str(exc))
            continue
        chosen.append((message, data, key))
    if not chosen:
        return
    if config.batch is None:
        groups = [[one] for one in chosen]
        events = [(data, key) for _, data, key in chosen]
    else:
        groups = [chosen]
        events = [({"messages": [data for _, data, _ in chosen], "count": len(chosen)},
                   f"batch:{chosen[0][2]}..{chosen[-1][2]}")]
    results = await ctx.fire_many(events)
    for group, result in zip(groups, results, strict=True):
        if isinstance(result, HubError):
            for message, _, _ in group:
                await source.dead_letter(message, str(result))


def _key(ctx: TriggerContextLike, message: Message, data: dict[str, Any]) -> str:
    config = ctx.bound.trigger
    if config.key is None:
        return message.event_key
    value = ctx.engine.expr.render(config.key, {"trigger": data}, f"triggers.{config.id}.key")
    if value in (None, ""):
        raise HubError(f"triggers.{config.id}.key rendered empty for this message; every message needs a key")
    return str(value)


def dead_letter_record(message: Message, error: str, source: str) -> dict[str, str]:
    """Headers a dead-lettered copy carries: the error and where the message came from."""
    return {"hub-error": error[:2000], "hub-source": source, "hub-event-key": message.event_key}


def setting_renderer(ctx: TriggerContextLike) -> Any:
    """A function rendering a trigger's connection setting (``"{{ secret('KAFKA_PASSWORD') }}"``)."""
    engine, where = ctx.engine, f"triggers.{ctx.bound.trigger.id}"

    def render(value: Any) -> Any:
        return engine.expr.render(value, {"secret": engine.secrets.get}, where) if value is not None else None

    return render
