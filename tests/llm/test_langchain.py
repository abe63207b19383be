"""langchain.invoke: any Runnable by import path, sync or async, results as plain JSON."""

from __future__ import annotations

import pytest

from hub.errors import TaskError
from hub.flow.loader import load_text
from hub.llm.invoke import LangchainInvoke, LangchainParams

pytestmark = pytest.mark.anyio
H = "tests.llm.llm_test_helpers"


async def invoke(contexts, **params):
    return await LangchainInvoke().run(contexts.make(), LangchainParams.model_validate(params))


async def test_a_sync_runnable(contexts):
    assert await invoke(contexts, runnable=f"{H}:shout", input={"text": "hi"}) == {"text": "HI", "length": 2}


async def test_an_async_runnable(contexts):
    assert await invoke(contexts, runnable=f"{H}:ashout", input={"text": "hi"}) == {"text": "HI"}


async def test_a_factory_returning_a_chain(contexts):
    assert await invoke(contexts, runnable=f"{H}:make_classifier", input={"text": "charged twice"}) == "billing"


async def test_messages_become_json(contexts):
    out = await invoke(contexts, runnable=f"{H}:chat_model", input="hi")
    assert out["content"] == "Hello from a chat model" and out["type"] == "ai"


async def test_failures_are_task_errors(contexts):
    with pytest.raises(TaskError, match="retriever is down"):
        await invoke(contexts, runnable=f"{H}:broken", input={})
    with pytest.raises(TaskError, match="cannot import"):
        await invoke(contexts, runnable="no.such.module:chain", input={})
    with pytest.raises(TaskError, match="not a Runnable"):
        await invoke(contexts, runnable=f"{H}:only_low_urgency", input={})


async def test_in_a_flow(engine_for_langchain):
    flow = load_text(
        f"""
id: lc
inputs: [{{id: text, type: string, required: true}}]
tasks:
  - {{id: chain, type: langchain.invoke, runnable: "{H}:shout", input: {{text: "{{{{ inputs.text }}}}"}}}}
outputs: {{shouted: "{{{{ outputs.chain.text }}}}"}}
"""
    )
    execution = await engine_for_langchain.execute(flow, {"text": "hey"})
    assert execution["state"] == "SUCCESS" and execution["outputs"] == {"shouted": "HEY"}


@pytest.fixture
def engine_for_langchain(sqlite_store, tmp_path):
    from hub.engine.runner import Engine
    from hub.settings import HubSettings

    return Engine(sqlite_store, HubSettings(home=tmp_path / "home"))


async def test_model_calls_inside_the_runnable_are_recorded_with_a_span(contexts):
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from hub.llm.records import CallLog
    from hub.telemetry.current import Telemetry, reset_current, set_current
    from hub.telemetry.metrics import instruments
    from hub.telemetry.setup import build_tracer_provider

    exporter = InMemorySpanExporter()
    provider = build_tracer_provider([exporter], simple=True)
    token = set_current(Telemetry(trace.get_tracer("hub", tracer_provider=provider), instruments(None), str))
    ctx = contexts.make(path="classify")
    try:
        out = await LangchainInvoke().run(ctx, LangchainParams.model_validate(
            {"runnable": f"{H}:make_classifier", "input": {"text": "charged twice"}}))
    finally:
        reset_current(token)
    assert out == "billing"
    [record] = CallLog(ctx.store.engine).calls(ctx.execution_id)
    assert record["path"] == "classify" and record["status"] == "ok" and record["response"] == "billing"
    assert record["request"]["messages"][0][1] == {"role": "human", "content": "charged twice"}
    [span] = exporter.get_finished_spans()
    assert span.name == f"chat {record['model']}" and record["trace_id"] == f"{span.context.trace_id:032x}"


async def test_a_failing_model_call_inside_the_runnable_is_recorded_as_an_error(contexts):
    from hub.llm.records import CallLog

    ctx = contexts.make()
    with pytest.raises(TaskError):
        await LangchainInvoke().run(ctx, LangchainParams.model_validate({"runnable": f"{H}:failing_model", "input": "hi"}))
    [record] = CallLog(ctx.store.engine).calls(ctx.execution_id)
    assert record["status"] == "error" and "model is down" in record["errors"][0]["message"]
