"""The ``slack.post`` and ``slack.update`` task kinds."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from connectors.slack.client import SlackClient
from connectors.slack.settings import SlackSettings
from connectors.slack.tables import SLACK_POSTS as POSTS
from hub.core.errors import TaskError
from hub.core.tasks import Params, TaskContext
from hub.net import Guard
from hub.net_settings import NetSettings


class _Content(Params):
    text: str | None = Field(None, description="Message text (mrkdwn); the notification fallback when blocks are given.")
    blocks: list[dict[str, Any]] | None = Field(None, description="Block Kit blocks.")
    token: str | None = Field(
        None, description="Bot token, usually \"{{ secret('SLACK_TOKEN') }}\"; default HUB_SLACK_BOT_TOKEN."
    )


class SlackPostParams(_Content):
    channel: str = Field(description="Channel ID (C...) or #name, or a user ID for a DM.")
    thread_ts: str | None = Field(None, description="Reply in the thread of this message ts.")
    reply_broadcast: bool | None = Field(None, description="Also show a thread reply in the channel.")
    unfurl_links: bool | None = None
    unfurl_media: bool | None = None
    username: str | None = Field(None, description="Display name (needs chat:write.customize).")
    icon_emoji: str | None = None
    icon_url: str | None = None
    metadata: dict[str, Any] | None = Field(None, description="Message metadata: {event_type, event_payload}.")


class SlackUpdateParams(_Content):
    channel: str = Field(description="Channel ID the message is in (as slack.post returned it).")
    ts: str = Field(description="The message's ts (as slack.post returned it).")


class SlackPost:
    """Post a message. Output: ``{"channel", "ts", "thread_ts"?}`` (feed them to slack.update or a
    later thread reply).

    A re-run of the same step (a retry after a crash) updates the message it already posted
    instead of posting a second one.
    """

    type = "slack.post"
    Params = SlackPostParams

    async def run(self, ctx: TaskContext, params: SlackPostParams) -> Any:
        extra = params.model_dump(
            exclude={"channel", "text", "blocks", "thread_ts", "token"}, exclude_none=True
        )
        _check_content(params)
        earlier = _earlier_post(ctx)
        async with SlackClient(params.token, ctx.settings.section(SlackSettings), _guard(ctx)) as slack:
            if earlier is not None:
                ctx.log(f"slack.post: this step already posted {earlier['ts']} in {earlier['channel']}; updating it")
                result = await slack.update(earlier["channel"], earlier["ts"], params.text, params.blocks)
                if params.thread_ts:
                    result["thread_ts"] = params.thread_ts
                return _output(result)
            result = await slack.post(params.channel, params.text, params.blocks, params.thread_ts, **extra)
        _remember_post(ctx, result)
        ctx.log(f"slack.post: posted {result['ts']} in {result['channel']}")
        return _output(result)


class SlackUpdate:
    """Replace the text and/or blocks of a message this app posted. Output: ``{"channel", "ts"}``."""

    type = "slack.update"
    Params = SlackUpdateParams

    async def run(self, ctx: TaskContext, params: SlackUpdateParams) -> Any:
        _check_content(params)
        async with SlackClient(params.token, ctx.settings.section(SlackSettings), _guard(ctx)) as slack:
            result = await slack.update(params.channel, params.ts, params.text, params.blocks)
        return _output(result)


def _guard(ctx: TaskContext) -> Guard:
    return Guard.from_settings(ctx.settings.section(NetSettings))


def _check_content(params: _Content) -> None:
    # at run time, not in the model: at load time a templated text is not known yet
    if not params.text and not params.blocks:
        raise TaskError("give text, blocks or both", retryable=False)


def _output(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in ("channel", "ts", "thread_ts") if result.get(k)}


def _earlier_post(ctx: TaskContext) -> dict[str, Any] | None:
    if ctx.store is None:
        return None
    with ctx.store.engine.connect() as conn:
        row = conn.execute(select(POSTS).where(POSTS.c.idempotency_key == ctx.idempotency_key)).first()
    return dict(row._mapping) if row else None


def _remember_post(ctx: TaskContext, result: dict[str, Any]) -> None:
    if ctx.store is None:
        return
    try:
        with ctx.store.engine.begin() as conn:
            conn.execute(
                insert(POSTS).values(
                    idempotency_key=ctx.idempotency_key,
                    execution_id=ctx.execution_id,
                    channel=result["channel"],
                    ts=result["ts"],
                    created_at=time.time(),
                )
            )
    except IntegrityError:  # a concurrent attempt of the same step recorded first
        pass
