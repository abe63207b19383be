"""An OpenAI-compatible chat server for tests and offline development.

It speaks ``POST /v1/chat/completions`` (with ``usage``; tool calls; ``stream: true`` answered
with chunks in the real server-sent-events wire format, usage last when ``stream_options`` asks) and ``POST /v1/embeddings`` on 127.0.0.1,
so litellm's real HTTP path runs against it. Replies are scripted per model, in order; when a
model's script is empty the default reply is used. A ``responder`` (request -> reply or None)
answers from the request's content instead, which concurrent callers need::

    fake = FakeOpenAI()
    fake.enqueue(Reply(status=429, headers={"Retry-After": "0"}), Reply('{"score": 0.9}'))
    fake.enqueue(Reply(status=500), model="primary")
    fake.enqueue(Reply(tool_calls=[{"name": "search", "arguments": {"q": "Ada"}}]))
    with fake.serve() as api_base:          # "http://127.0.0.1:<port>/v1"
        ...
    assert fake.requests[0]["model"] == "primary"
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CONTEXT_OVERFLOW = (
    "This model's maximum context length is 128 tokens. However, your messages resulted in "
    "4000 tokens. Please reduce the length of the messages."
)


EMBEDDING_DIMENSIONS = 64


def bag_of_words(text: str) -> list[float]:
    """The fake's embeddings: hashed word counts, normalised, so texts sharing words are similar."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % EMBEDDING_DIMENSIONS] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


@dataclass
class Reply:
    """One scripted answer. A ``status`` other than 200 answers with an OpenAI error body."""

    content: str = "ok"
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    error_code: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """``[{"name": ..., "arguments": {...} or "<json>", "id": optional}]``: the answer calls tools."""

    def __post_init__(self) -> None:
        if self.tool_calls and self.content == "ok":  # a tool-calling answer has no text unless given one
            self.content = ""

    @classmethod
    def context_overflow(cls) -> Reply:
        return cls(status=400, error=CONTEXT_OVERFLOW, error_code="context_length_exceeded")


class FakeOpenAI:
    """A scripted OpenAI-compatible server; ``requests`` holds every request body it received."""

    def __init__(self, default: Reply | None = None):
        self.default = default or Reply()
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []  # of each chat request, in order
        self.in_flight = 0
        self.max_in_flight = 0  # the most chat requests it was answering at once
        self.embedding_requests: list[dict[str, Any]] = []
        self.responder: Callable[[dict[str, Any]], Reply | str | None] | None = None
        self._scripts: dict[str | None, deque[Reply]] = {}
        self._lock = threading.Lock()

    def enqueue(self, *replies: Reply | str, model: str | None = None) -> FakeOpenAI:
        """Queue replies for ``model`` (the name in the request body), or for any model."""
        with self._lock:
            queue = self._scripts.setdefault(model, deque())
            queue.extend(Reply(r) if isinstance(r, str) else r for r in replies)
        return self

    def reset(self, default: Reply | None = None) -> None:
        """Forget scripts, the responder and requests (to share one server between tests)."""
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
            self.request_headers.clear()
            self.embedding_requests.clear()
            self.responder = None
            self.max_in_flight = 0
            self.default = default or Reply()

    def calls(self, model: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests if model is None or r.get("model") == model]

    def _reply(self, request: dict[str, Any]) -> Reply:
        if self.responder is not None:
            answer = self.responder(request)
            if answer is not None:
                return Reply(answer) if isinstance(answer, str) else answer
        return self._next(request.get("model"))

    def _next(self, model: str | None) -> Reply:
        with self._lock:
            for key in (model, None):
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
        return self.default

    # -- ASGI ----------------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"].rstrip("/")
        if scope["method"] == "GET" and path.endswith("/models"):
            await _send_json(send, 200, {"object": "list", "data": []})
            return
        if scope["method"] == "POST" and path.endswith("/embeddings"):
            await self._embeddings(json.loads(body or b"{}"), send)
            return
        if scope["method"] != "POST" or not path.endswith("/chat/completions"):
            await _send_json(send, 404, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        request = json.loads(body or b"{}")
        with self._lock:
            self.requests.append(request)
            self.request_headers.append({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})
        reply = self._reply(request)
        if reply.delay:
            with self._lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(reply.delay)
            finally:
                with self._lock:
                    self.in_flight -= 1
        if reply.status != 200:
            error = {
                "message": reply.error or f"fake error {reply.status}",
                "type": "rate_limit_error" if reply.status == 429 else "server_error",
                "code": reply.error_code,
            }
            await _send_json(send, reply.status, {"error": error}, reply.headers)
            return
        prompt_tokens = reply.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
        completion_tokens = reply.completion_tokens
        if completion_tokens is None:
            completion_tokens = max(1, len(reply.content.split()) + 8 * len(reply.tool_calls))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        calls = _tool_calls(reply)
        if request.get("stream"):
            await _stream(send, request, reply, calls, usage)
            return
        answer: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
        if calls:
            answer["tool_calls"] = calls
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake"),
            "choices": [{"index": 0, "message": answer, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": usage,
        }
        await _send_json(send, 200, payload, reply.headers)

    async def _embeddings(self, request: dict[str, Any], send: Any) -> None:
        with self._lock:
            self.embedding_requests.append(request)
        texts = request.get("input") or []
        texts = texts if isinstance(texts, list) else [texts]
        tokens = sum(len(str(t).split()) for t in texts)
        await _send_json(send, 200, {
            "object": "list",
            "model": request.get("model"),
            "data": [{"object": "embedding", "index": i, "embedding": bag_of_words(str(t))} for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    # -- serving -------------------------------------------------------------------------------------

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on a free loopback port in a thread; yields the ``api_base`` (``.../v1``)."""
        from hub.testing import serve_app

        with serve_app(self) as base:
            yield f"{base}/v1"


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    out = []
    for n, call in enumerate(reply.tool_calls):
        arguments = call.get("arguments", {})
        out.append({
            "id": call.get("id") or f"call_{n}_{uuid.uuid4().hex[:8]}",
            "type": "function",
            "function": {
                "name": call["name"],
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
            },
        })
    return out


async def _stream(
    send: Any, request: dict[str, Any], reply: Reply, calls: list[dict[str, Any]], usage: dict[str, int]
) -> None:
    """The answer as chat.completion.chunk events, as OpenAI streams it: a role delta, content in
    word-sized pieces, tool calls split into their name and argument fragments, the finish reason,
    the usage (only when ``stream_options.include_usage``), then ``[DONE]``."""
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk",
        "created": int(time.time()), "model": request.get("model", "fake"),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
        *[(k.lower().encode(), v.encode()) for k, v in reply.headers.items()],
    ]})
    pieces = [chunk({"role": "assistant", "content": ""})]
    if reply.content:
        pieces += [chunk({"content": word}) for word in re.findall(r"\S+\s*|\s+", reply.content)]
    for index, call in enumerate(calls):
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        pieces.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"], "arguments": arguments[:half]}}]}))
        pieces.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]}))
    pieces.append(chunk({}, "tool_calls" if calls else "stop"))
    if (request.get("stream_options") or {}).get("include_usage"):
        pieces.append(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n")
    pieces.append(b"data: [DONE]\n\n")
    for piece in pieces:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _send_json(send: Any, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
