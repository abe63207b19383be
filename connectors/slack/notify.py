"""The Slack notifier: approval requests and reminders as Slack messages, re-drawn after each vote."""

from __future__ import annotations

from hub.core.notify import Notice, Receipt
from hub.core.tasks import TaskContext, TaskSettings


class SlackNotifier:
    """Posts a notice's blocks (its text as the fallback) to a channel or user id; a notice that
    replies to an earlier one goes into that message's thread."""

    async def send(self, ctx: TaskContext, target: str, notice: Notice, key: str) -> Receipt:
        from connectors.slack.client import post_message
        from connectors.slack.settings import SlackSettings

        reply_to = notice.reply_to
        result = await post_message(
            channel=reply_to.channel if reply_to and reply_to.channel else target,
            text=notice.text, blocks=notice.blocks, thread_ts=reply_to.ts if reply_to else None,
            settings=ctx.settings.section(SlackSettings),
        )
        return Receipt(channel=result.get("channel"), ts=result.get("ts"))

    async def update(self, receipt: Receipt, notice: Notice, settings: TaskSettings | None = None) -> None:
        from connectors.slack.client import update_message
        from connectors.slack.settings import SlackSettings

        if receipt.channel is None or receipt.ts is None:
            raise ValueError("a Slack message is updated by its channel and ts")
        await update_message(channel=receipt.channel, ts=receipt.ts, text=notice.text, blocks=notice.blocks,
                             settings=settings.section(SlackSettings) if settings is not None else None)
