"""The tracing the hub lends its features: the running execution's tracer and model-call spans.

A feature that calls a model (``llm.chat``, a LangChain runnable) or acts for one (an agent's tool
call) opens its spans here, not by importing the telemetry feature: the span lands under the
step's span, with the execution's redactor, in the tracer the tracing middleware set up::

    from hub.core.tracing import TRACING, lookup

    with lookup(TRACING).model_call(model="gpt-4o-mini", messages=messages) as call:
        completion = await client.complete(...)
        call.record_response(input_tokens=..., output_tokens=..., cost=completion.cost)

Span and attribute names are the constants of :mod:`hub.core.attributes`. The telemetry feature
(:mod:`hub.telemetry.genai`) provides the implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from hub.core import attributes as A
from hub.core.host import Interface, lookup

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ["TRACING", "ModelCall", "Tracing", "lookup"]


class ModelCall(Protocol):
    """The open span of one model call."""

    @property
    def trace_id(self) -> str | None:
        """The span's trace id (32 hex digits), None when tracing is off."""
        ...

    def record_messages(self, messages: Sequence[dict[str, Any]] | None) -> None: ...

    def record_response(
        self, *, response_model: str | None = None, provider: str | None = None, input_tokens: int | None = None,
        output_tokens: int | None = None, finish_reasons: Sequence[str] | None = None, cost: float | None = None,
        repair_attempts: int | None = None, response_id: str | None = None, cached: bool | None = None,
        messages: Sequence[dict[str, Any]] | None = None, output: Any = None,
    ) -> None:
        """What the model answered (content only where capture is on)."""
        ...

    def fail(self, error: BaseException) -> None:
        """Mark the call failed (its type and redacted message) and end the span."""
        ...

    def end(self) -> None: ...


class Tracing(Protocol):
    def tracer(self) -> Tracer:
        """The running execution's tracer (the global one outside an execution)."""
        ...

    def model_call(
        self, *, model: str, provider: str | None = None, operation: str = A.OPERATION_CHAT,
        prompt_name: str | None = None, prompt_version: str | int | None = None, prompt_hash: str | None = None,
        messages: Sequence[dict[str, Any]] | None = None, redact: Callable[[Any], Any] | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> AbstractContextManager[ModelCall]:
        """A ``{operation} {model}`` span around the block, made current; an exception leaving it
        is recorded; token usage, duration and cost go to the metrics."""
        ...

    def start_model_call(self, model: str, redact: Callable[[Any], Any]) -> ModelCall:
        """A ``chat {model}`` span started now and not made current, ended by ``end``/``fail``
        (a call seen through callbacks, as LangChain reports them)."""
        ...


TRACING: Interface[Tracing] = Interface("tracing", "hub.telemetry.genai")
