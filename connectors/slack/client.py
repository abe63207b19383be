"""Talking to Slack's Web API with slack_sdk, the hub's way.

:class:`SlackClient` wraps ``AsyncWebClient``: its HTTP goes through the :mod:`hub.net` guard,
a 429 waits for ``Retry-After`` (up to ``max_retry_wait``, ``rate_limit_retries`` times) and
otherwise becomes ``ConnectorError(status=429, retry_after=...)``, and Slack's ``error`` codes
become :class:`~hub.errors.ConnectorError` with a hint, retryable only when Slack says the
failure is on its side.

Other features reuse the two functions at the bottom::

    msg = await post_message(channel="#sales-review", text="Approve?", blocks=[...])
    await update_message(channel=msg["channel"], ts=msg["ts"], text="Approved by Ana")
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from connectors.slack.settings import SlackSettings
from hub.core.errors import ConnectorError, TaskError
from hub.net import Guard, aiohttp_session, retry_after

# Slack error codes that mean "try again later"; every other code is a request to fix something.
RETRYABLE = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}

HINTS = {
    "not_authed": "no token was sent; set HUB_SLACK_BOT_TOKEN or give the step a token",
    "invalid_auth": "the token is not valid; check HUB_SLACK_BOT_TOKEN or the step's token secret",
    "account_inactive": "the token belongs to a deleted user or app; create a new token",
    "token_revoked": "the token was revoked; create a new token",
    "missing_scope": "the app lacks a scope (chat:write for posting); add it and reinstall the app",
    "channel_not_found": "no such channel, or the app cannot see it; use the channel ID (C...) and invite the app",
    "not_in_channel": "invite the app to the channel (/invite @your-app)",
    "is_archived": "the channel is archived",
    "msg_too_long": "the text is longer than Slack accepts (40,000 characters)",
    "no_text": "give text or blocks",
    "invalid_blocks": "the blocks are not valid Block Kit; check them in Block Kit Builder",
    "invalid_blocks_format": "blocks must be a list of Block Kit objects",
    "message_not_found": "no message with that ts in that channel (chat.update needs the channel ID)",
    "cant_update_message": "only messages posted by this app can be updated",
    "thread_not_found": "thread_ts does not name a message in that channel",
}


def resolve_token(token: str | None, settings: SlackSettings) -> str:
    if token:
        return token
    if settings.bot_token is not None:
        return settings.bot_token.get_secret_value()
    raise TaskError(
        "Slack is not configured: set HUB_SLACK_BOT_TOKEN, or give the step "
        "token: \"{{ secret('SLACK_TOKEN') }}\"",
        retryable=False,
    )


class SlackClient:
    """One Slack token and an open, guarded HTTP session. Use as ``async with``."""

    def __init__(self, token: str | None = None, settings: SlackSettings | None = None, guard: Guard | None = None):
        self.settings = settings or SlackSettings()
        self.token = resolve_token(token, self.settings)
        self.guard = guard
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None

    async def __aenter__(self) -> SlackClient:
        self._session = aiohttp_session(self.guard)
        self._client = AsyncWebClient(
            token=self.token,
            base_url=self.settings.base_url,
            timeout=int(self.settings.timeout),
            session=self._session,
            retry_handlers=[],
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = self._client = None

    async def call(self, method: str, **payload: Any) -> dict[str, Any]:
        """Call a Web API method with a JSON body; returns Slack's answer (``ok`` is true)."""
        if self._client is None:
            raise RuntimeError("use SlackClient as 'async with SlackClient(...) as slack'")
        payload = {k: v for k, v in payload.items() if v is not None}
        waits = 0
        while True:
            try:
                response = await self._client.api_call(method, json=payload)
                return dict(response.data) if isinstance(response.data, dict) else {"ok": True}
            except SlackApiError as exc:
                status = exc.response.status_code
                data = exc.response.data if isinstance(exc.response.data, dict) else {}
                code = str(data.get("error") or f"http_{status}")
                if status == 429 or code == "ratelimited":
                    after = _retry_after(exc.response.headers)
                    if waits < self.settings.rate_limit_retries and after <= self.settings.max_retry_wait:
                        waits += 1
                        await asyncio.sleep(after)
                        continue
                    raise ConnectorError(
                        f"Slack {method} is rate limited; retry after {after:g}s",
                        status=429,
                        retry_after=after,
                        data={"error": code},
                    ) from None
                raise _api_error(method, status, code, data) from None
            except TimeoutError:
                raise ConnectorError(f"Slack {method} timed out after {self.settings.timeout:g}s") from None
            except (aiohttp.ClientError, SlackClientError) as exc:
                raise ConnectorError(f"Slack {method} failed: {type(exc).__name__}: {exc}") from None

    async def post(
        self,
        channel: str,
        text: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """``chat.postMessage``: returns ``{"channel", "ts", "thread_ts"?, "message"}``."""
        data = await self.call(
            "chat.postMessage", channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, **extra
        )
        return _message_result(data)

    async def update(
        self,
        channel: str,
        ts: str,
        text: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """``chat.update`` (``channel`` must be the channel ID that ``post`` returned)."""
        data = await self.call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks, **extra)
        return _message_result(data)


def _retry_after(headers: Any) -> float:
    """Seconds Slack asks to wait (the hub's one reading of ``Retry-After``), 1 s if it says nothing."""
    flat = {str(k).lower(): str(v[0] if isinstance(v, list) else v) for k, v in dict(headers or {}).items()}
    found = retry_after(flat)
    return 1.0 if found is None else found


def _api_error(method: str, status: int, code: str, data: dict[str, Any]) -> ConnectorError:
    hint = HINTS.get(code)
    needed = data.get("needed")
    message = f"Slack {method} failed: {code}" + (f" ({hint})" if hint else "")
    if needed:
        message += f"; needed scope: {needed}"
    retryable = code in RETRYABLE or status >= 500
    return ConnectorError(message, status=status, retryable=retryable, data={"error": code})


def _message_result(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"channel": data.get("channel"), "ts": data.get("ts")}
    message = data.get("message") or {}
    if message.get("thread_ts"):
        out["thread_ts"] = message["thread_ts"]
    if message:
        out["message"] = message
    return out


async def post_message(
    *,
    channel: str,
    text: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
    thread_ts: str | None = None,
    token: str | None = None,
    settings: SlackSettings | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Post one message (text and/or Block Kit blocks, optionally in a thread)."""
    async with SlackClient(token, settings) as slack:
        return await slack.post(channel, text, blocks, thread_ts, **extra)


async def update_message(
    *,
    channel: str,
    ts: str,
    text: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
    token: str | None = None,
    settings: SlackSettings | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Replace a message this app posted (e.g. an approval request once it is decided)."""
    async with SlackClient(token, settings) as slack:
        return await slack.update(channel, ts, text, blocks, **extra)
