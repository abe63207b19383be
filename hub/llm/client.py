"""The hub's model client: aliases, timeouts, retries, fallbacks, cost, and the hub's errors.

:class:`LLMClient` calls models by alias (see :mod:`hub.llm.settings`); a model name that is not
an alias (``openai/gpt-4o-mini``) is an alias of itself. Every request has a timeout. A failure
that may pass (rate limit, 5xx, timeout, connection) is retried ``HUB_LLM_NUM_RETRIES`` times
with backoff, honouring ``Retry-After``; when the alias still fails, its ``fallbacks`` are tried
in order, and when the messages do not fit, its ``context_window_fallbacks`` (default: its
fallbacks) are, without retrying the overflow. Requests go over one of two transports
(:mod:`hub.llm.transports`): the OpenAI wire format spoken directly, or litellm for every other
provider.

Provider failures come out as hub errors: :class:`~hub.errors.ConnectorError` with the status
(429 and 5xx retryable), :class:`LLMTimeout`, :class:`ContextWindowExceeded`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry import trace

from hub.errors import ConnectorError, TaskError
from hub.llm.litellm_transport import Litellm, imported_litellm, litellm_module, price_map
from hub.llm.settings import LLMSettings, ModelsConfig, ModelSpec
from hub.llm.transports import (
    OnToken,
    OpenAICompatible,
    ProviderFailure,
    Reply,
    imported_aiohttp,
    wants_openai,
)

__all__ = ["LLMClient", "Completion", "Embeddings", "LLMTimeout", "ContextWindowExceeded", "litellm_module"]

T = TypeVar("T")

MAX_BACKOFF = 8.0  # seconds between two tries of one alias, unless the provider asks for more
DEFAULT_OUTPUT_ESTIMATE = 512  # output tokens a budget reserves for a call that sets no max_tokens
MAX_RETRY_AFTER = 60.0  # a longer Retry-After ends the tries (the step's own retry policy can wait)


class LLMTimeout(TaskError):
    """The provider did not answer within the timeout (after the retries)."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


class ContextWindowExceeded(TaskError):
    """The messages do not fit the model, and no context-window fallback took them."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


@dataclass
class Completion:
    """One answered request: the text, who answered and what it cost."""

    text: str
    model_requested: str
    model: str
    litellm_model: str
    provider: str | None
    input_tokens: int
    output_tokens: int
    cost: float
    latency_ms: float  # the answering request's wall time: no retries, backoff or pricing in it
    retries: int = 0
    fallbacks: int = 0
    finish_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """``[{"id", "name", "arguments"}]`` when the model answered by calling tools (arguments: JSON text)."""

    @property
    def fallback_used(self) -> bool:
        return self.fallbacks > 0 or self.model != self.model_requested

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model_requested": self.model_requested,
            "model": self.model,
            "litellm_model": self.litellm_model,
            "provider": self.provider,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost,
            "latency_ms": self.latency_ms,
            "retries": self.retries,
            "fallbacks": self.fallbacks,
            "finish_reason": self.finish_reason,
            "tool_calls": self.tool_calls,
        }


@dataclass
class Embeddings:
    """One answered embedding request: a vector per text, and what it cost."""

    vectors: list[list[float]]
    model: str  # the alias that answered (a fallback's, when one did)
    litellm_model: str
    input_tokens: int
    cost: float
    latency_ms: float


@dataclass
class _Tries:
    retries: int = 0
    fallbacks: int = 0
    request_ms: float = 0.0  # wall time of the request that answered (no backoff, no queueing)


class _Failed(Exception):
    """An alias and the fallbacks it went on to all failed; ``failure`` is the last one's."""

    def __init__(self, failure: ProviderFailure, seconds: float):
        super().__init__(failure.message)
        self.failure, self.seconds = failure, seconds


_UNPRICED = (0.0, 0.0)


def _missing_key(spec: ModelSpec) -> str | None:
    """Why ``spec`` cannot be called for want of its key (``api_key_env`` names an unset variable)."""
    if spec.api_key_env and not os.environ.get(spec.api_key_env) and spec.mock_response is None:
        return (f"{spec.model} reads its API key from {spec.api_key_env}, which is not set: export "
                f"{spec.api_key_env}=..., or point the alias at another model in the models file "
                f"(a local OpenAI-compatible server needs no key)")
    return None


def unknown_alias(name: str, settings: LLMSettings, known: list[str]) -> str:
    """Why model ``name`` cannot be called, where aliases were looked for, and how to fix it."""
    path = settings.models_file
    where = f"{path} ({path.resolve()})" if path.is_file() else f"{path} (no such file: {path.resolve()})"
    defined = f"; defined: {', '.join(known)}" if known else ""
    return (
        f"model {name!r} is not an alias: aliases are read from {where} and HUB_LLM_MODELS{defined}. "
        f"Define {name!r} under 'models:' in that file (see the commented models.yaml the hub ships, or "
        f"docs/llm.md), set HUB_LLM_MODELS_FILE to your aliases file, or name a provider's model as "
        f"provider/model (openai/gpt-4o-mini)"
    )


class LLMClient:
    """Calls models by alias. Build once per process; share it through ``engine.services`` under :data:`hub.llm.services.LLM_CLIENT`."""

    def __init__(self, settings: LLMSettings | None = None, config: ModelsConfig | None = None):
        self.settings = settings if settings is not None else LLMSettings()  # embedders and tests
        self.config = config if config is not None else self.settings.load_models()
        self._extra: dict[str, ModelSpec] = {}
        self._openai = OpenAICompatible(self.settings.max_connections)
        self._litellm = Litellm()
        self._prices: dict[str, tuple[float, float]] = {}
        self._warm: set[str] = set()

    @property
    def default_model(self) -> str | None:
        return self.config.default

    def spec(self, name: str, strict: bool = True) -> ModelSpec:
        """The alias ``name``, or an ad-hoc spec for a provider's model named ``provider/model``.
        A name with no ``/`` that is no alias is an error saying where aliases are defined, unless
        not ``strict`` (pricing a model another library called, e.g. inside a LangChain runnable)."""
        if name in self.config.models:
            return self.config.models[name]
        if strict and "/" not in name:
            raise TaskError(unknown_alias(name, self.settings, sorted(self.config.models)), retryable=False)
        if name not in self._extra:
            self._extra[name] = ModelSpec(model=name, api_base=self.settings.api_base, api_key=self.settings.api_key)
        return self._extra[name]

    async def aclose(self) -> None:
        """Close the connections this event loop holds (server and worker shutdown)."""
        await self._openai.aclose()

    def _transport(self, spec: ModelSpec) -> OpenAICompatible | Litellm:
        return self._openai if wants_openai(spec) else self._litellm

    def _chain(self, model: str) -> list[str]:
        """``model`` and every alias a failure could lead to from it (fallbacks of fallbacks)."""
        seen: dict[str, None] = {}
        todo = [model]
        while todo:
            name = todo.pop(0)
            if name not in seen:
                seen[name] = None
                spec = self.spec(name)
                todo += [*spec.fallbacks, *(spec.context_window_fallbacks or [])]
        return list(seen)

    async def warm(self, model: str) -> None:
        """Do the slow once-per-process work ``model`` (and its fallbacks) will need — litellm's
        or aiohttp's import, the price lookup — now, so that no request's latency includes it."""
        if model in self._warm:
            return
        for name in self._chain(model):
            spec = self.spec(name)
            if wants_openai(spec):
                await imported_aiohttp()
            if not wants_openai(spec) or not spec.has_price:
                await imported_litellm()
                if wants_openai(spec):
                    self._price(spec)
        self._warm.add(model)

    async def complete(
        self,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        on_token: OnToken | None = None,
    ) -> Completion:
        """Ask ``model`` (an alias or a litellm model name); raises hub errors on failure.

        ``params`` go to the provider as OpenAI names them (``temperature``, ``tools``,
        ``tool_choice``, ``response_format`` ...). With ``on_token`` the answer is streamed and each
        piece of text is passed to it as it arrives (a retried stream starts again from its start).
        """

        def ask(spec: ModelSpec, seconds: float) -> Awaitable[Reply]:
            return self._transport(spec).chat(spec, messages, {**spec.params, **(params or {})}, seconds, on_token)

        await self.warm(model)  # litellm's import and the price lookup are no request's latency
        tries = _Tries()
        answered, reply = await self._call(model, ask, timeout, tries)
        spec = self.spec(answered)
        if reply.cost is not None and not spec.has_price:
            cost = reply.cost
        else:
            cost = await self._cost(spec, reply.input_tokens, reply.output_tokens)
        return Completion(
            text=reply.text,
            model_requested=model,
            model=answered,
            litellm_model=spec.model,
            provider=reply.provider,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cost=cost,
            latency_ms=tries.request_ms,
            retries=tries.retries,
            fallbacks=tries.fallbacks,
            finish_reason=reply.finish_reason,
            tool_calls=reply.tool_calls,
        )

    async def embed(self, model: str, texts: list[str], timeout: float | None = None) -> Embeddings:
        """Embeddings of ``texts`` from ``model`` (an alias or a litellm model name), with the
        alias's provider, key, base URL, timeout, retries and fallbacks."""

        def ask(spec: ModelSpec, seconds: float) -> Awaitable[tuple[list[list[float]], int]]:
            return self._transport(spec).embed(spec, texts, seconds)

        await self.warm(model)
        tries = _Tries()
        answered, (vectors, tokens) = await self._call(model, ask, timeout, tries)
        spec = self.spec(answered)
        return Embeddings(
            vectors=vectors,
            model=answered,
            litellm_model=spec.model,
            input_tokens=tokens,
            cost=await self._cost(spec, tokens, 0),
            latency_ms=tries.request_ms,
        )

    async def _call(
        self, model: str, ask: Callable[[ModelSpec, float], Awaitable[T]], timeout: float | None, tries: _Tries
    ) -> tuple[str, T]:
        """``ask`` the alias, with retries, then each fallback its failure calls for, in order; a
        fallback that fails goes on to its own fallbacks first (depth first, as litellm's Router
        did), and no alias is asked twice. The error is the last alias's."""
        tried: set[str] = set()

        async def attempt(name: str) -> tuple[str, T]:
            tried.add(name)
            spec = self.spec(name)
            seconds = timeout or spec.timeout or self.settings.timeout
            try:
                return name, await self._retrying(spec, ask, seconds, tries)
            except ProviderFailure as failure:
                failed = _Failed(failure, seconds)
            window = spec.context_window_fallbacks
            overflow = failed.failure.kind == "context"
            for other in (window if overflow and window is not None else spec.fallbacks):
                if other in tried:
                    continue
                tries.fallbacks += 1
                try:
                    return await attempt(other)
                except _Failed as later:
                    failed = later
            raise failed

        try:
            return await attempt(model)
        except _Failed as failed:
            raise self._error(failed.failure, model, failed.seconds, tries) from None

    async def _retrying(
        self, spec: ModelSpec, ask: Callable[[ModelSpec, float], Awaitable[T]], seconds: float, tries: _Tries
    ) -> T:
        missing = _missing_key(spec)
        if missing:  # said before litellm is imported or a request is made; fallbacks still get their turn
            raise ProviderFailure("key", missing)
        attempts = self.settings.num_retries + 1
        for attempt in range(attempts):
            started = time.perf_counter()
            try:
                answer = await ask(spec, seconds)
            except ProviderFailure as failure:
                if not failure.retryable or attempt + 1 == attempts:
                    raise
                wait = failure.retry_after
                if wait is None:
                    wait = min(MAX_BACKOFF, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)
                elif wait > MAX_RETRY_AFTER:
                    raise
                tries.retries += 1
                trace.get_current_span().add_event(  # on the model call's span, when one is open
                    "hub.llm.retry",
                    {"hub.llm.model": spec.model, "error.type": failure.kind, "hub.llm.retry_in_s": round(wait, 3)}
                    | ({"http.response.status_code": failure.status} if failure.status else {}),
                )
                await asyncio.sleep(wait)
                continue
            tries.request_ms = (time.perf_counter() - started) * 1000
            return answer
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _cost(self, spec: ModelSpec, tokens_in: int, tokens_out: int) -> float:
        """USD: the alias's own prices when it has them, else litellm's price map (0 when the
        model is not in it, as a self-hosted one usually is not)."""
        if spec.has_price:
            return spec.cost(tokens_in, tokens_out)
        if spec.model not in self._prices:
            await imported_litellm()
        price_in, price_out = self._price(spec)
        return tokens_in * price_in + tokens_out * price_out

    async def cost_of(self, model: str, tokens_in: int, tokens_out: int) -> float:
        """USD for tokens of ``model`` (an alias or a model name): its prices, or litellm's map."""
        return await self._cost(self.spec(model, strict=False), tokens_in, tokens_out)

    async def estimate(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any] | None = None) -> float:
        """What one call will cost at most, about (USD), before it is made: a token per 4
        characters of the request as input, ``max_tokens`` (default 512) as output, at the prices
        of the alias asked. The budget reserves it before the call (see :mod:`hub.llm.budget`)."""
        await self.warm(model)
        spec = self.spec(model)
        tokens_in = len(json.dumps(messages, default=str)) // 4 + 1
        tokens_out = int((params or {}).get("max_tokens") or spec.params.get("max_tokens") or DEFAULT_OUTPUT_ESTIMATE)
        return await self._cost(spec, tokens_in, tokens_out)

    def _price(self, spec: ModelSpec) -> tuple[float, float]:
        prices = self._prices.get(spec.model)
        if prices is None:
            prices = self._prices[spec.model] = price_map(spec.model) or _UNPRICED
        return prices

    @staticmethod
    def _error(failure: ProviderFailure, model: str, timeout: float, tries: _Tries) -> Exception:
        detail = failure.message.replace("\n", " ")[:500]
        after = " (after retries)" if tries.retries else ""
        if failure.kind == "context":
            return ContextWindowExceeded(
                f"model {model!r}: the messages do not fit its context window and no fallback took them; "
                f"shorten the input or add context_window_fallbacks ({detail})"
            )
        if failure.kind == "timeout":
            return LLMTimeout(f"model {model!r} did not answer within {timeout:g}s{after}: {detail}")
        if failure.kind == "auth":
            return ConnectorError(
                f"model {model!r}: the provider rejected the API key; set it (api_key_env in the models file) ({detail})",
                status=failure.status or 401,
                retryable=False,
            )
        if failure.kind == "key":
            return ConnectorError(f"model {model!r}: {detail}", retryable=False)
        if failure.kind == "rate_limit":
            return ConnectorError(
                f"model {model!r} is rate limited{after}: {detail}", status=429, retry_after=failure.retry_after
            )
        if failure.kind == "connection":
            return ConnectorError(f"model {model!r}: cannot reach the provider: {detail}", retryable=True)
        if failure.kind == "server":
            return ConnectorError(f"model {model!r} failed{after}: {detail}", status=failure.status, retryable=True)
        return ConnectorError(f"model {model!r} failed: {detail}", status=failure.status, retryable=False)


_DEFAULT: LLMClient | None = None


def install(engine: Any) -> LLMClient:
    """The ``llm`` service of a process (``hub serve``, ``hub worker``): the model client built
    from the environment, with litellm's slow import started in a thread when an alias needs it."""
    from hub.llm.settings import LLMSettings

    client = default_client(engine.settings.section(LLMSettings))
    if client.settings.preload is not False:
        preload_litellm(client.settings)
    return client


def needs_litellm(config: ModelsConfig) -> bool:
    """Whether calls may need litellm: an alias goes through it or is priced from its price map
    (or no alias is defined, so model names go to litellm)."""
    return not config.models or any(not wants_openai(spec) or not spec.has_price for spec in config.models.values())


def preload_litellm(settings: LLMSettings | None = None) -> threading.Thread | None:
    """Import litellm in a background thread now, at process start (``hub serve``, ``hub
    worker``), when some model alias will need it (litellm transport, or a price from its map):
    its import takes seconds and must not fall inside the first model call. None when no alias
    needs it or it is imported already."""
    if "litellm" in sys.modules:
        return None
    try:
        config = (settings or LLMSettings()).load_models()
    except Exception:  # a broken models file is reported when a model is called
        return None
    if not needs_litellm(config):
        return None
    thread = threading.Thread(target=litellm_module, name="hub-litellm-import", daemon=True)
    thread.start()
    return thread


def default_client(settings: LLMSettings | None = None) -> LLMClient:
    """The process-wide client (when no ``llm`` service was given), built on first use from
    ``settings`` (the process's LLM section; default: read from the environment)."""
    global _DEFAULT
    if _DEFAULT is None or (settings is not None and _DEFAULT.settings is not settings):
        _DEFAULT = LLMClient(settings)
    return _DEFAULT


async def close_clients(*clients: LLMClient | None) -> None:
    """Close ``clients`` and the process-wide default client, if they were built."""
    for client in {id(c): c for c in (*clients, _DEFAULT) if c is not None}.values():
        await client.aclose()

