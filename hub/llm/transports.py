"""How one request reaches one model: two transports behind :class:`~hub.llm.client.LLMClient`.

- :class:`OpenAICompatible` speaks the OpenAI chat-completions and embeddings wire format over a
  pooled aiohttp session. It serves aliases whose model is ``openai/<name>`` with an ``api_base``
  (vLLM, Ollama's ``/v1``, LM Studio, llama.cpp, OpenRouter, a gateway ...) or that ask for
  ``transport: openai``. A fraction of a millisecond of CPU per call where litellm's path costs
  3.5-7 ms, which was most of the hub's overhead on a fast local model (``bench/llm_client_bench.py``).
- :class:`hub.llm.litellm_transport.Litellm` is every other provider (Anthropic, Bedrock, Vertex,
  Azure, ...) and ``mock_response`` aliases, through ``litellm.acompletion`` with its own retries
  off; that module is the hub's only import of litellm.

Both answer with a :class:`Reply` or raise :class:`ProviderFailure`, which says what kind of
failure it was; retries, fallbacks and the hub's error types are decided once, in the client.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import weakref
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry.propagate import inject

from hub.llm.settings import ModelSpec

if TYPE_CHECKING:
    import aiohttp

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

OPENAI_BASE = "https://api.openai.com/v1"


def retry_after(headers: Any) -> float | None:
    """:func:`hub.net.retry_after`, imported on first use: ``hub.net`` loads httpx, which a
    process that calls models over aiohttp (or not at all) need not hold in memory."""
    from hub.net import retry_after as seconds

    return seconds(headers)


class ProviderFailure(Exception):
    """One failed request, classified.

    ``kind``: ``timeout``, ``connection`` (never reached the provider), ``rate_limit``, ``auth``,
    ``context`` (the messages do not fit), ``server`` (5xx), ``request`` (another 4xx).
    """

    RETRYABLE = frozenset({"timeout", "connection", "rate_limit", "server"})

    def __init__(self, kind: str, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.kind, self.message, self.status, self.retry_after = kind, message, status, retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in self.RETRYABLE


@dataclass
class Reply:
    """What a provider answered, before the client adds who was asked and what it cost."""

    text: str
    model: str
    provider: str | None
    input_tokens: int
    output_tokens: int
    finish_reason: str | None
    cost: float | None = None  # known to the transport (litellm's price map); None: the client prices it
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """``[{"id", "name", "arguments"}]``, the arguments as the JSON text the model wrote."""


OnToken = Callable[[str], None]
"""Called with each piece of text as a streamed answer arrives."""


class StreamAssembly:
    """A streamed answer put back together from its chunks (OpenAI's ``chat.completion.chunk``)."""

    def __init__(self, on_token: OnToken):
        self.on_token = on_token
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.model: str | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        self.model = self.model or chunk.get("model")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            if piece:
                self.text.append(piece)
                self.on_token(piece)
            for part in delta.get("tool_calls") or []:
                call = self.calls.setdefault(int(part.get("index") or 0), {"id": None, "name": "", "arguments": ""})
                call["id"] = part.get("id") or call["id"]
                function = part.get("function") or {}
                call["name"] += function.get("name") or ""
                call["arguments"] += function.get("arguments") or ""
            self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def tool_calls(self) -> list[dict[str, Any]]:
        return [
            {**call, "id": call["id"] or f"call_{index}"} for index, call in sorted(self.calls.items())
        ]


async def _close_at_loop_end(
    session: aiohttp.ClientSession, forget: Callable[[], None]
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        forget()  # the session refers to its loop: kept in the map, it would keep the loop alive
        await session.close()


async def _read_events(response: aiohttp.ClientResponse, assembly: StreamAssembly) -> None:
    """Server-sent events of a streamed chat completion: ``data: <chunk JSON>`` lines, ended by
    ``data: [DONE]`` (or by the end of the body)."""
    async for raw_line in response.content:
        line = raw_line.strip()
        if not line.startswith(b"data:"):
            continue  # blank separators, comments (": keep-alive"), event names
        data = line[5:].strip()
        if data == b"[DONE]":
            return
        chunk = json.loads(data)
        if isinstance(chunk, dict) and chunk.get("error"):
            error = chunk["error"]
            message = str(error.get("message") if isinstance(error, dict) else error)
            raise ProviderFailure("server", f"the stream ended with an error: {message}", 502)
        assembly.add(chunk)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def wants_openai(spec: ModelSpec) -> bool:
    """Whether ``spec`` goes over :class:`OpenAICompatible`."""
    if spec.mock_response is not None:  # answered by litellm without calling anything, whatever the transport
        return False
    if spec.transport != "auto":
        return spec.transport == "openai"
    return spec.api_base is not None and spec.model.startswith("openai/")


def api_key(spec: ModelSpec) -> str | None:
    return os.environ.get(spec.api_key_env) if spec.api_key_env else spec.api_key


# how OpenAI-compatible servers word "the messages do not fit" (litellm's list, which the litellm
# transport goes by): OpenAI and vLLM, llama.cpp, TGI, gateways passing on Anthropic's or Gemini's
_CONTEXT_OVERFLOW = (
    "context_length",
    "context window",
    "maximum context length",
    "model's maximum context limit",
    "is longer than the model's context length",
    "exceeds the available context size",
    "exceed context limit",
    "input tokens exceed the configured limit",
    "`inputs` tokens + `max_new_tokens` must be",
    "exceeds the maximum number of tokens allowed",
    "prompt is too long",
)


def status_kind(status: int, message: str, code: str | None) -> str:
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth"
    if status >= 500 or status in (408, 409):
        return "server"
    text = f"{code or ''} {message}".lower()
    if any(words in text for words in _CONTEXT_OVERFLOW):
        return "context"
    return "request"


class OpenAICompatible:
    """Chat completions and embeddings over HTTP: one aiohttp connection pool per event loop.

    aiohttp rather than httpx here: with 16 requests in flight an httpx call costs ~1.6 ms of CPU
    and an aiohttp one ~0.12 ms, and on a fast local model that difference is the hub's overhead.
    The W3C trace context is sent with each request, so a provider that traces joins the trace.
    ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY`` apply as they do through litellm (read once
    per server, not per request as aiohttp's ``trust_env`` would).
    """

    def __init__(self, max_connections: int = 256):
        self.max_connections = max_connections
        self._proxies: dict[str, tuple[Any, Any]] = {}  # api_base -> (proxy URL, proxy auth) or (None, None)
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
            weakref.WeakKeyDictionary()
        )
        self._closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
            weakref.WeakKeyDictionary()
        )

    async def _session(self) -> aiohttp.ClientSession:
        import aiohttp  # ~0.1 s: only when a model is called

        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300)
            session = self._sessions[loop] = aiohttp.ClientSession(
                connector=connector, trust_env=False, json_serialize=_dumps, raise_for_status=False
            )
            # closed by the loop's shutdown_asyncgens (asyncio.run, uvicorn) when nobody calls aclose
            closer = self._closers[loop] = _close_at_loop_end(session, functools.partial(self._forget, loop, session))
            await closer.__anext__()
        return session

    def _forget(self, loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession) -> None:
        if self._sessions.get(loop) is session:
            del self._sessions[loop]
            self._closers.pop(loop, None)

    async def aclose(self) -> None:
        """Close this event loop's connections."""
        loop = asyncio.get_running_loop()
        session = self._sessions.pop(loop, None)
        closer = self._closers.pop(loop, None)
        if closer is not None:
            await closer.aclose()
        elif session is not None:
            await session.close()

    def _proxy(self, base: str) -> tuple[Any, Any]:
        """The environment's proxy for ``base`` and its credentials (aiohttp's own reading of
        ``*_PROXY``, ``NO_PROXY`` and .netrc), or ``(None, None)``."""
        found = self._proxies.get(base)
        if found is None:
            from aiohttp.helpers import get_env_proxy_for_url
            from yarl import URL

            try:
                found = get_env_proxy_for_url(URL(base))
            except LookupError:  # none set for its scheme, or NO_PROXY names the host
                found = (None, None)
            self._proxies[base] = found
        return found

    @staticmethod
    def _name(spec: ModelSpec) -> str:
        return spec.model.removeprefix("openai/")

    async def _post(
        self, spec: ModelSpec, path: str, body: dict[str, Any], timeout: float, extra_headers: dict[str, Any] | None = None,
        stream: StreamAssembly | None = None,
    ) -> dict[str, Any]:
        base = (spec.api_base or OPENAI_BASE).rstrip("/")
        # an alias without a key of its own sends OPENAI_API_KEY, as litellm and the OpenAI SDK do
        # (a gateway keyed that way keeps working; `api_key: none` sends a dummy key instead)
        key = api_key(spec) or os.environ.get("OPENAI_API_KEY")
        headers = {"authorization": f"Bearer {key}"} if key else {}
        if extra_headers:
            headers.update({str(name): str(value) for name, value in extra_headers.items()})
        inject(headers)
        import aiohttp

        proxy, proxy_auth = self._proxy(base)
        try:
            async with (await self._session()).post(
                f"{base}{path}", json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout),
                proxy=proxy, proxy_auth=proxy_auth,
            ) as response:
                status, response_headers = response.status, response.headers
                if stream is not None and status == 200:
                    await _read_events(response, stream)
                    return {}
                raw = await response.read()
        except TimeoutError:
            raise ProviderFailure("timeout", f"no answer within {timeout:g}s") from None
        except aiohttp.ClientConnectionError as exc:
            raise ProviderFailure("connection", f"{type(exc).__name__}: {exc or 'connection failed'} ({base})") from None
        except aiohttp.ClientError as exc:  # a broken answer (payload, encoding)
            raise ProviderFailure("server", f"{type(exc).__name__}: {exc} ({base})", 502) from None
        except ValueError as exc:  # a streamed chunk that is not JSON
            raise ProviderFailure("server", f"a streamed chunk is not JSON: {exc} ({base})", 502) from None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if status >= 400:
            error = data.get("error") if isinstance(data, dict) else None
            if isinstance(error, dict):
                message, code = str(error.get("message") or ""), error.get("code")
            else:
                message, code = str(error or raw[:300].decode("utf-8", "replace")), None
            message = message or f"HTTP {status}"
            raise ProviderFailure(
                status_kind(status, message, code if isinstance(code, str) else None),
                f"HTTP {status}: {message}",
                status=status,
                retry_after=retry_after(response_headers),
            )
        if not isinstance(data, dict):
            raise ProviderFailure("server", f"HTTP {status}: the answer is not a JSON object", 502)
        return data

    async def chat(
        self, spec: ModelSpec, messages: list[dict[str, Any]], params: dict[str, Any], timeout: float,
        on_token: OnToken | None = None,
    ) -> Reply:
        """One chat completion; with ``on_token`` it is streamed (``stream: true``, usage asked for
        in the last chunk) and each piece of text goes to ``on_token`` as it arrives."""
        # extra_body / extra_headers as the OpenAI SDK (and litellm) take them: merged into the request
        params = dict(params)
        extra_body, extra_headers = params.pop("extra_body", None), params.pop("extra_headers", None)
        body = {**params, **(extra_body or {}), "model": self._name(spec), "messages": messages}
        if on_token is not None:
            assembly = StreamAssembly(on_token)
            body.update(stream=True, stream_options={"include_usage": True})
            await self._post(spec, "/chat/completions", body, timeout, extra_headers, stream=assembly)
            return Reply(
                text="".join(assembly.text),
                model=str(assembly.model or self._name(spec)),
                provider="openai",
                input_tokens=int(assembly.usage.get("prompt_tokens") or 0),
                output_tokens=int(assembly.usage.get("completion_tokens") or 0),
                finish_reason=assembly.finish_reason,
                tool_calls=assembly.tool_calls(),
            )
        data = await self._post(spec, "/chat/completions", body, timeout, extra_headers)
        try:
            choice = data["choices"][0]
            message = choice["message"]
            text = message.get("content") or ""
            calls = [
                {"id": call.get("id") or f"call_{n}", "name": call["function"]["name"],
                 "arguments": call["function"].get("arguments") or ""}
                for n, call in enumerate(message.get("tool_calls") or [])
            ]
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ProviderFailure("server", f"the answer has no choices[0].message: {str(data)[:300]}", 502) from None
        usage = data.get("usage") or {}
        return Reply(
            text=text if isinstance(text, str) else str(text),
            model=str(data.get("model") or self._name(spec)),
            provider="openai",
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=choice.get("finish_reason"),
            tool_calls=calls,
        )

    async def embed(self, spec: ModelSpec, texts: list[str], timeout: float) -> tuple[list[list[float]], int]:
        data = await self._post(spec, "/embeddings", {"model": self._name(spec), "input": texts}, timeout)
        try:
            rows = sorted(data["data"], key=lambda row: row.get("index", 0))
            vectors = [list(map(float, row["embedding"])) for row in rows]
        except (KeyError, TypeError, ValueError):
            raise ProviderFailure("server", f"the answer has no data[].embedding: {str(data)[:300]}", 502) from None
        return vectors, int((data.get("usage") or {}).get("prompt_tokens") or 0)


async def imported_aiohttp() -> None:
    """aiohttp's first import (~0.1 s of CPU) run off the event loop, once, when the first request
    needs it: otherwise it stalls every call already in flight."""
    from hub.llm.slow_imports import imported

    await imported("aiohttp")
