"""Spans and metrics for model calls, after the OpenTelemetry GenAI semantic conventions.

One ``chat {model}`` span per call to the model (a repair round is another call)::

    from hub.telemetry.genai import llm_call_span

    with llm_call_span(model="gpt-4o-mini", provider="openai", prompt_name="lead_qualifier",
                       prompt_version=3, prompt_hash="sha256:...", messages=messages) as call:
        completion = await client.complete(...)
        call.record_response(response_model=completion.model, input_tokens=..., output_tokens=...,
                             finish_reasons=["stop"], cost=completion.cost, repair_attempts=round_no - 1,
                             output=completion.text)

Inside an execution the span is a child of the step's span and uses the execution's tracer and
redactor. Message content is recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``, and then redacted.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from hub.core import attributes as A
from hub.core.host import provide
from hub.core.tracing import TRACING
from hub.telemetry.current import current


def capture_content() -> bool:
    """Whether prompts and answers may go into spans (off unless the env variable says true)."""
    return os.environ.get(A.ENV_CAPTURE_CONTENT, "").strip().lower() == "true"


def provider_of(model: str) -> str:
    """A ``gen_ai.provider.name`` guessed from a litellm model name (``anthropic/claude-...``)."""
    if "/" in model:
        return model.split("/", 1)[0]
    lowered = model.lower()
    for prefix, name in (("gpt", "openai"), ("o1", "openai"), ("o3", "openai"), ("claude", "anthropic"),
                         ("gemini", "gcp.gemini"), ("mistral", "mistral_ai")):
        if lowered.startswith(prefix):
            return name
    return "unknown"


class LLMCall:
    """The open span of one model call; call :meth:`record_response` once the answer is in."""

    def __init__(self, span: Span, attrs: dict[str, Any], redact: Callable[[Any], Any], capture: bool):
        self.span = span
        self.redact = redact
        self.capture = capture
        self.metric_attrs = attrs
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cost: float | None = None

    @property
    def trace_id(self) -> str | None:
        context = self.span.get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None

    def fail(self, error: BaseException) -> None:
        """The call failed: its type and redacted message on the span, which ends."""
        self.span.set_attribute(A.ERROR_TYPE, type(error).__qualname__)
        self.span.set_status(Status(StatusCode.ERROR, self.redact(str(error) or type(error).__qualname__)))
        self.span.end()

    def end(self) -> None:
        self.span.end()

    def record_messages(self, messages: Sequence[dict[str, Any]] | None) -> None:
        """The request's messages (only with content capture on)."""
        if self.capture and messages is not None:
            self.span.set_attribute(A.GEN_AI_INPUT_MESSAGES, _json(self.redact(list(messages))))

    def record_response(
        self,
        *,
        response_model: str | None = None,
        provider: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        finish_reasons: Sequence[str] | None = None,
        cost: float | None = None,
        repair_attempts: int | None = None,
        response_id: str | None = None,
        cached: bool | None = None,
        messages: Sequence[dict[str, Any]] | None = None,
        output: Any = None,
    ) -> None:
        """What the model answered: usage, finish reasons, cost; content only with capture on.

        ``provider`` replaces the guess made from the requested model (an alias says nothing).
        """
        span = self.span
        if provider:
            span.set_attribute(A.GEN_AI_PROVIDER_NAME, provider)
            self.metric_attrs[A.GEN_AI_PROVIDER_NAME] = provider
        if response_model:
            span.set_attribute(A.GEN_AI_RESPONSE_MODEL, response_model)
            self.metric_attrs[A.GEN_AI_RESPONSE_MODEL] = response_model
        if response_id:
            span.set_attribute(A.GEN_AI_RESPONSE_ID, response_id)
        if input_tokens is not None:
            self.input_tokens = int(input_tokens)
            span.set_attribute(A.GEN_AI_USAGE_INPUT_TOKENS, self.input_tokens)
        if output_tokens is not None:
            self.output_tokens = int(output_tokens)
            span.set_attribute(A.GEN_AI_USAGE_OUTPUT_TOKENS, self.output_tokens)
        if finish_reasons:
            span.set_attribute(A.GEN_AI_RESPONSE_FINISH_REASONS, [str(r) for r in finish_reasons])
        if cost is not None:
            self.cost = float(cost)
            span.set_attribute(A.LLM_COST, self.cost)
        if repair_attempts is not None:
            span.set_attribute(A.LLM_REPAIR_ATTEMPTS, int(repair_attempts))
        if cached is not None:
            span.set_attribute(A.LLM_CACHED, bool(cached))
        self.record_messages(messages)
        if self.capture and output is not None:
            content = output if isinstance(output, str) else _json(output)
            reply = [{"role": "assistant", "parts": [{"type": "text", "content": content}],
                      "finish_reason": (list(finish_reasons or ["stop"]) or ["stop"])[0]}]
            span.set_attribute(A.GEN_AI_OUTPUT_MESSAGES, _json(self.redact(reply)))


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


@contextmanager
def llm_call_span(
    *,
    model: str,
    provider: str | None = None,
    operation: str = A.OPERATION_CHAT,
    prompt_name: str | None = None,
    prompt_version: str | int | None = None,
    prompt_hash: str | None = None,
    messages: Sequence[dict[str, Any]] | None = None,
    redact: Callable[[Any], Any] | None = None,
    attributes: dict[str, Any] | None = None,
) -> Iterator[LLMCall]:
    """Open a ``{operation} {model}`` span (CLIENT kind) around one model call.

    An exception leaving the block is recorded (type, redacted message) with ERROR status and
    ``error.type``; token usage, duration and cost go to the GenAI and hub metrics.
    """
    telemetry = current()
    redact = redact or telemetry.redact
    provider = provider or provider_of(model)
    attrs: dict[str, Any] = {
        A.GEN_AI_OPERATION_NAME: operation,
        A.GEN_AI_PROVIDER_NAME: provider,
        A.GEN_AI_REQUEST_MODEL: model,
    }
    span_attrs = dict(attrs)
    if telemetry.execution_id:
        span_attrs[A.EXECUTION_ID] = telemetry.execution_id
    if prompt_name:
        span_attrs[A.GEN_AI_PROMPT_NAME] = prompt_name
    if prompt_version is not None:
        span_attrs[A.PROMPT_VERSION] = str(prompt_version)
    if prompt_hash:
        span_attrs[A.PROMPT_HASH] = prompt_hash
    span_attrs.update(redact(attributes or {}))
    started = time.perf_counter()
    span = telemetry.tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=span_attrs)
    call = LLMCall(span, attrs, redact, capture_content())
    call.record_messages(messages)
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            yield call
    except BaseException as exc:
        error_type = type(exc).__qualname__
        call.metric_attrs[A.ERROR_TYPE] = error_type
        span.set_attribute(A.ERROR_TYPE, error_type)
        message = redact(str(exc) or error_type)
        span.add_event("exception", {"exception.type": error_type, "exception.message": message})
        span.set_status(Status(StatusCode.ERROR, message))
        raise
    finally:
        span.end()
        meters = telemetry.instruments
        meters.operation_duration.record(time.perf_counter() - started, call.metric_attrs)
        for kind, count in (("input", call.input_tokens), ("output", call.output_tokens)):
            if count is not None:
                meters.token_usage.record(count, {**call.metric_attrs, A.GEN_AI_TOKEN_TYPE: kind})
        if call.cost:
            meters.llm_cost.add(call.cost, {A.GEN_AI_REQUEST_MODEL: model,
                                            A.GEN_AI_PROVIDER_NAME: call.metric_attrs[A.GEN_AI_PROVIDER_NAME]})


class GenAITracing:
    """What :data:`hub.core.tracing.TRACING` lends the features that call models."""

    def tracer(self) -> trace.Tracer:
        return current().tracer

    model_call = staticmethod(llm_call_span)

    def start_model_call(self, model: str, redact: Callable[[Any], Any]) -> LLMCall:
        attrs = {A.GEN_AI_OPERATION_NAME: A.OPERATION_CHAT, A.GEN_AI_PROVIDER_NAME: provider_of(model),
                 A.GEN_AI_REQUEST_MODEL: model}
        # not made current (a callback's context is not the next one's): its parent is the step's span
        span = current().tracer.start_span(f"{A.OPERATION_CHAT} {model}", kind=SpanKind.CLIENT, attributes=attrs)
        return LLMCall(span, attrs, redact, capture_content())


provide(TRACING, GenAITracing())
