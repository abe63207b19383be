"""A fake of Slack's Web API (chat.postMessage, chat.update, auth.test) on its documented wire format.

- ``POST /api/<method>`` with a JSON or form body and ``Authorization: Bearer <token>``;
- answers are HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error": "<code>"}``
  (``not_authed``, ``invalid_auth``, ``channel_not_found``, ``no_text``, ``invalid_blocks``,
  ``message_not_found``, ``cant_update_message``, ``thread_not_found``);
- rate limits are HTTP 429 with ``Retry-After: <seconds>`` and ``{"ok": false, "error": "ratelimited"}``.

Point slack_sdk at it with ``AsyncWebClient(base_url=f"{url}/api/")``::

    fake = FakeSlack(tokens={"xoxb-test"}, channels={"C0GENERAL": "general"})
    with serve(fake.app) as url: ...
    fake.rate_limit("chat.postMessage", retry_after=1)   # the next call gets a 429
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class Call:
    method: str
    token: str | None
    body: dict[str, Any]
    content_type: str


@dataclass
class FakeSlack:
    tokens: set[str] = field(default_factory=lambda: {"xoxb-test"})
    channels: dict[str, str] = field(default_factory=lambda: {"C0GENERAL": "general"})
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    bot_user: str = "U0BOT"
    _failures: dict[str, list[tuple[int, dict[str, str], dict[str, Any]]]] = field(default_factory=dict)
    _clock: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[Route("/api/{method}", self._handle, methods=["POST", "GET"])])

    # -- scripting ---------------------------------------------------------------------------------

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` are answered 429 with ``Retry-After``."""
        for _ in range(times):
            self._failures.setdefault(method, []).append(
                (429, {"Retry-After": str(retry_after)}, {"ok": False, "error": "ratelimited"})
            )

    def fail(self, method: str, error: str, status: int = 200, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        for _ in range(times):
            self._failures.setdefault(method, []).append((status, {}, {"ok": False, "error": error}))

    def posted(self, method: str = "chat.postMessage") -> list[dict[str, Any]]:
        return [c.body for c in self.calls if c.method == method]

    # -- wire ----------------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        ctype = request.headers.get("content-type", "").split(";")[0]
        if ctype == "application/json":
            body = await request.json()
        else:
            body = dict(await request.form())
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else body.pop("token", None)
        self.calls.append(Call(method, token, body, ctype))
        queued = self._failures.get(method)
        if queued:
            status, headers, payload = queued.pop(0)
            return JSONResponse(payload, status_code=status, headers=headers)
        if not token:
            return self._error("not_authed")
        if token not in self.tokens:
            return self._error("invalid_auth")
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post,
            "chat.update": self._update,
        }.get(method)
        if handler is None:
            return self._error("unknown_method")
        return JSONResponse(handler(body))

    @staticmethod
    def _error(code: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"ok": False, "error": code, **extra})

    def _auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "hub", "user_id": self.bot_user}

    def _channel_id(self, ref: str) -> str | None:
        if ref in self.channels:
            return ref
        name = ref.lstrip("#")
        for cid, cname in self.channels.items():
            if cname == name:
                return cid
        return None

    @staticmethod
    def _content_problem(body: dict[str, Any]) -> str | None:
        blocks = body.get("blocks")
        if isinstance(blocks, str):
            import json

            try:
                blocks = json.loads(blocks)
            except ValueError:
                return "invalid_blocks_format"
        if blocks is not None and (
            not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks)
        ):
            return "invalid_blocks"
        if not body.get("text") and not blocks and not body.get("attachments"):
            return "no_text"
        return None

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(str(body.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        problem = self._content_problem(body)
        if problem:
            return {"ok": False, "error": problem}
        thread_ts = body.get("thread_ts")
        if thread_ts and (channel, str(thread_ts)) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        ts = f"1700000000.{next(self._clock):06d}"
        message = {"type": "message", "user": self.bot_user, "ts": ts, "text": body.get("text", "")}
        if body.get("blocks") is not None:
            message["blocks"] = body["blocks"]
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = str(body.get("channel", ""))
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        ts = str(body.get("ts", ""))
        message = self.messages.get((channel, ts))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if message.get("user") != self.bot_user:
            return {"ok": False, "error": "cant_update_message"}
        problem = self._content_problem(body)
        if problem:
            return {"ok": False, "error": problem}
        message["text"] = body.get("text", "")
        if body.get("blocks") is not None:
            message["blocks"] = body["blocks"]
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"], "message": message}
