"""How a human is reached: the interface of a notifier plugin (email, Slack, ...).

A feature that needs to tell a person something (an approval request, a reminder) builds one
:class:`Notice` with every rendering it has — plain text, HTML, Slack blocks — and hands it to the
notifier of the channel, which a plugin contributes with ``hub.notifier("slack", "pkg.mod:Class")``.
The notifier takes the rendering its channel shows and returns a :class:`Receipt` that later
updates (a Slack message re-drawn after each vote) refer to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from hub.core.tasks import TaskContext, TaskSettings


@dataclass(frozen=True)
class Receipt:
    """Where a notice went: the channel's own ids (a Slack channel and ts, an email's outbox id)."""

    id: str | None = None
    channel: str | None = None
    ts: str | None = None


@dataclass(frozen=True)
class Notice:
    """One thing to tell a person, in every form a channel may show."""

    subject: str
    text: str
    html: str | None = None
    blocks: list[dict[str, Any]] | None = None
    sender: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reply_to: Receipt | None = None
    """Show the notice as a reply to an earlier one (a Slack thread) where the channel can."""


@runtime_checkable
class Notifier(Protocol):
    """Sends a notice to one target of its channel (an address, a Slack channel or user id).

    ``key`` is unique per notice and target and stable across re-runs: a notifier whose channel
    deduplicates (the email outbox) sends once whatever the re-runs."""

    async def send(self, ctx: TaskContext, target: str, notice: Notice, key: str) -> Receipt: ...


@runtime_checkable
class Updatable(Protocol):
    """A notifier whose messages can be changed after they are sent (Slack)."""

    async def update(self, receipt: Receipt, notice: Notice, settings: TaskSettings | None = None) -> None: ...
