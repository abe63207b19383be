"""llm.chat emits GenAI spans: one ``chat`` span per round, the repair round included."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.core import attributes as A
from hub.llm.chat import Chat, ChatParams
from hub.llm.fake import Reply
from hub.telemetry.current import Telemetry, reset_current, set_current
from hub.telemetry.metrics import instruments
from hub.telemetry.setup import build_tracer_provider
from tests.llm import conftest as llm_fixtures

# the LLM tests' fixtures (fake OpenAI-compatible server, client, prompts, contexts), reused here
globals().update(
    {name: value for name, value in vars(llm_fixtures).items() if type(value).__name__ == "FixtureFunctionDefinition"}
)

pytestmark = pytest.mark.anyio
GOOD = '{"category": "billing", "urgency": "high"}'


async def test_llm_chat_spans_follow_the_genai_conventions(contexts, fake) -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider([exporter], simple=True)
    token = set_current(Telemetry(trace.get_tracer("hub", tracer_provider=provider), instruments(None), str))
    try:
        fake.enqueue(Reply("Sure! billing.", prompt_tokens=40, completion_tokens=4), Reply(GOOD, prompt_tokens=60, completion_tokens=9))
        ctx = contexts.make()
        out = await Chat().run(ctx, ChatParams.model_validate({"prompt": "triage@production", "vars": {"body": "charged twice"}}))
    finally:
        reset_current(token)
    assert out["rounds"] == 2
    first, repair = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)
    assert first.name == repair.name == "chat fast"
    attrs = repair.attributes
    assert attrs[A.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[A.GEN_AI_REQUEST_MODEL] == "fast"
    assert attrs[A.GEN_AI_RESPONSE_MODEL] == "openai/gpt-4o-mini"
    assert (attrs[A.GEN_AI_USAGE_INPUT_TOKENS], attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (60, 9)
    assert attrs[A.GEN_AI_PROMPT_NAME] == "triage" and attrs[A.PROMPT_VERSION] == "1"
    assert attrs[A.PROMPT_HASH] == out["prompt"]["hash"]
    assert attrs[A.LLM_REPAIR_ATTEMPTS] == 1 and first.attributes[A.LLM_REPAIR_ATTEMPTS] == 0
    assert attrs[A.LLM_COST] > 0
    assert A.GEN_AI_INPUT_MESSAGES not in attrs and A.GEN_AI_OUTPUT_MESSAGES not in attrs
    # every call record names the trace it belongs to
    from hub.llm.records import CallLog

    records = CallLog(ctx.store.engine).calls(ctx.execution_id)
    assert [r["trace_id"] for r in records] == [f"{first.context.trace_id:032x}", f"{repair.context.trace_id:032x}"]


async def test_a_retry_is_an_event_on_the_call_span_and_the_provider_gets_the_trace(contexts, fake, transport) -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider([exporter], simple=True)
    token = set_current(Telemetry(trace.get_tracer("hub", tracer_provider=provider), instruments(None), str))
    try:
        fake.enqueue(Reply(status=503, headers={"Retry-After": "0"}), Reply(GOOD))
        ctx = contexts.make()
        await Chat().run(ctx, ChatParams.model_validate({"prompt": "triage@production", "vars": {"body": "charged twice"}}))
    finally:
        reset_current(token)
    [span] = exporter.get_finished_spans()
    [retry] = [e for e in span.events if e.name == "hub.llm.retry"]
    assert retry.attributes["error.type"] == "server" and retry.attributes["http.response.status_code"] == 503
    assert retry.attributes["hub.llm.model"] == "openai/gpt-4o-mini" and retry.attributes["hub.llm.retry_in_s"] == 0
    if transport == "openai":  # litellm's own HTTP client carries no trace context
        trace_id = f"{span.context.trace_id:032x}"
        assert all(h["traceparent"].split("-")[1] == trace_id for h in fake.request_headers)
        assert len(fake.request_headers) == 2
