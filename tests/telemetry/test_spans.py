"""The span tree of real flows: parallel block, connector retry, model calls, a pause resumed by
another engine (another process) — one trace id end to end — and secrets nowhere."""

from __future__ import annotations

import pytest
from opentelemetry.trace import StatusCode

from hub.core import attributes as A
from hub.telemetry import spanstore
from hub.telemetry.propagation import trace_trigger
from hub.telemetry.review import execution_trace
from tests.telemetry.conftest import SECRET, every_string, named, sync, tree

FLOW = """
id: traced
namespace: tests
tasks:
  - id: fan
    type: parallel
    tasks:
      - {id: a, type: set, values: {x: 1}}
      - {id: b, type: log, message: "hello {{ secret('API_TOKEN') }}"}
  - id: call
    type: test.tool
    token: "{{ secret('API_TOKEN') }}"
    failures: 1
    retry: {type: constant, interval: 0s, max_attempts: 2}
  - id: ask
    type: llm.test_chat
    question: "Is {{ secret('API_TOKEN') }} a lead?"
  - id: gate
    type: test_gate
    message: approve the lead
outputs:
  decided_by: "{{ outputs.gate.decided_by.identity }}"
"""


@sync
async def test_span_tree_across_a_pause_resumed_by_another_engine(traced) -> None:
    first = traced()
    row = await first.engine.execute(first.flow(FLOW))
    assert row["state"] == "PAUSED"
    spans_a = first.spans()
    assert tree(spans_a) == [
        ("execution tests.traced", [
            ("step fan", [("step a", []), ("step b", [])]),
            ("execute_tool test.tool", []),
            ("execute_tool test.tool", []),
            ("step ask", [("chat gpt-4o-mini", []), ("chat gpt-4o-mini", [])]),
            ("step gate", []),
        ]),
    ]

    # another process: a second engine (own tracer provider) on the same database resumes it
    second = traced()
    await second.engine.resume(row["id"])
    await second.engine.queue.drain()
    done = second.engine.store.get_execution(row["id"])
    assert done["state"] == "SUCCESS" and done["outputs"] == {"decided_by": "ana@example.com"}
    spans_b = second.spans()
    assert tree(spans_b) == [("resume tests.traced", [("step gate", [])])]

    # one trace id end to end; the resumed run hangs under the stored root span
    root = named(spans_a, "execution tests.traced")[0]
    trace_ids = {s.context.trace_id for s in spans_a + spans_b}
    assert trace_ids == {root.context.trace_id}
    resume = spans_b[-1]
    assert resume.name == "resume tests.traced"
    assert resume.parent.span_id == root.context.span_id
    assert done["trace_id"] == spanstore.trace_hex(root.context.trace_id)
    assert done["span_id"] == spanstore.span_hex(root.context.span_id)

    # the gate's wait: paused on one engine, resumed with the decider on the other
    paused = named(spans_a, "step gate")[0]
    assert paused.attributes[A.STEP_STATE] == "PAUSED"
    assert [e.name for e in paused.events] == [A.EVENT_PAUSED]
    assert paused.events[0].attributes["reason"] == "waiting for a decision"
    decided = named(spans_b, "step gate")[0]
    assert decided.attributes[A.STEP_RESUMED] is True
    assert decided.attributes[A.DECIDED_BY] == "ana@example.com"
    assert decided.attributes[A.DECISION] == "approved"
    assert decided.attributes[A.DECISION_CHANNEL] == "slack"
    assert decided.events[0].name == A.EVENT_RESUMED
    assert [lk.context.span_id for lk in decided.links] == [paused.context.span_id]
    assert named(spans_a, "execution tests.traced")[0].attributes[A.EXECUTION_STATE] == "PAUSED"
    assert resume.attributes[A.EXECUTION_STATE] == "SUCCESS"

    # step runs carry their span ids
    steps = {(s["path"], s["attempt"]): s for s in second.engine.store.step_runs(row["id"])}
    assert steps[("gate", 1)]["span_id"] == spanstore.span_hex(paused.context.span_id)
    assert steps[("gate", 2)]["span_id"] == spanstore.span_hex(decided.context.span_id)
    assert {s["trace_id"] for s in steps.values()} == {done["trace_id"]}

    # the connector attempt that failed, and the retry that followed
    failed, retried = named(spans_a, "execute_tool test.tool")
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes[A.STEP_ATTEMPT] == 1 and failed.attributes[A.STEP_STATE] == "FAILED"
    assert failed.attributes[A.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert failed.attributes[A.GEN_AI_TOOL_NAME] == "test.tool"
    assert failed.attributes[A.ERROR_TYPE] == "ConnectorError"
    assert failed.attributes[A.HUB_ERROR_RETRYABLE] is True
    assert [e.name for e in failed.events] == ["exception"]
    assert retried.attributes[A.STEP_ATTEMPT] == 2 and retried.attributes[A.STEP_STATE] == "SUCCESS"
    assert retried.attributes[A.STEP_RETRY_REASON] == "ConnectorError: upstream refused token ******"
    assert retried.attributes[A.STEP_RETRY_DELAY] == 0.0
    assert retried.events[0].name == A.EVENT_LOG  # ctx.log lines become span events

    # model calls after the GenAI conventions, with the repair round; no content by default
    first_call, repair = named(spans_a, "chat gpt-4o-mini")
    assert dict(repair.attributes) == {
        A.GEN_AI_OPERATION_NAME: "chat",
        A.GEN_AI_PROVIDER_NAME: "openai",
        A.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        A.EXECUTION_ID: row["id"],
        A.GEN_AI_PROMPT_NAME: "qualifier",
        A.PROMPT_VERSION: "3",
        A.PROMPT_HASH: "sha256:abc",
        A.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        A.GEN_AI_USAGE_INPUT_TOKENS: 20,
        A.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
        A.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        A.LLM_COST: 0.001,
        A.LLM_REPAIR_ATTEMPTS: 1,
    }
    assert first_call.attributes[A.LLM_REPAIR_ATTEMPTS] == 0
    assert repair.kind.name == "CLIENT"

    # secrets: in no span of either process
    for span in spans_a + spans_b:
        for text in every_string(span):
            assert SECRET not in text, (span.name, text)

    # the hub's own store has the whole trace for the viewer, as one tree
    found = execution_trace(second.engine.store, row["id"])
    assert [n["name"] for n in found["spans"]] == ["execution tests.traced"]
    children = [n["name"] for n in found["spans"][0]["children"]]
    assert children == ["step fan", "execute_tool test.tool", "execute_tool test.tool", "step ask", "step gate",
                        "resume tests.traced"]
    assert found["usage"]["input_tokens"] == 32 and found["usage"]["output_tokens"] == 8
    assert found["usage"]["calls"] == 2 and found["usage"]["repair_attempts"] == 1
    assert found["usage"]["cost"] == pytest.approx(0.002)
    assert found["errors"] == 1
    for row_ in spanstore.trace_spans(second.engine.store.engine, done["trace_id"]):
        assert SECRET not in str(row_)


@sync
async def test_message_content_is_captured_only_when_asked_and_then_redacted(traced, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    one = traced()
    await one.engine.execute(one.flow(FLOW))
    call = named(one.spans(), "chat gpt-4o-mini")[0]
    sent = call.attributes[A.GEN_AI_INPUT_MESSAGES]
    assert '"content": "******"' in sent and SECRET not in sent  # the question was made with secret()
    assert "not json" in call.attributes[A.GEN_AI_OUTPUT_MESSAGES]


@sync
async def test_an_incoming_traceparent_is_continued(traced) -> None:
    one = traced()
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    trigger = trace_trigger({"type": "webhook"}, {"Traceparent": incoming, "X-Other": "1"})
    assert trigger == {"type": "webhook", "traceparent": incoming}
    flow = "id: hooked\ntasks:\n  - {id: a, type: set, values: {x: 1}}\n"
    row = await one.engine.execute(one.flow(flow), trigger=trigger)
    root = named(one.spans(), "execution default.hooked")[0]
    assert spanstore.trace_hex(root.context.trace_id) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert spanstore.span_hex(root.parent.span_id) == "00f067aa0ba902b7"
    assert root.attributes[A.TRIGGER_TYPE] == "webhook"
    assert one.engine.store.get_execution(row["id"])["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


@sync
async def test_an_invalid_traceparent_is_dropped() -> None:
    assert trace_trigger({"type": "webhook"}, {"traceparent": "00-zz-00-01"}) == {"type": "webhook"}


@sync
async def test_a_subflow_child_joins_the_parent_trace_under_the_subflow_step(traced) -> None:
    one = traced()
    one.engine.deploy(one.flow("id: child\nnamespace: tests\ntasks:\n  - {id: c, type: set, values: {x: 1}}\n"))
    parent = "id: parent\nnamespace: tests\ntasks:\n  - {id: sub, type: subflow, flow: tests.child}\n"
    row = await one.engine.execute(one.flow(parent))
    assert row["state"] == "SUCCESS"
    assert tree(one.spans()) == [
        ("execution tests.parent", [("step sub", [("execution tests.child", [("step c", [])])])]),
    ]
    assert len({s.context.trace_id for s in one.spans()}) == 1


@sync
async def test_a_failing_flow_marks_the_root_span_as_error(traced) -> None:
    one = traced()
    flow = """
id: boom
tasks:
  - id: group
    type: sequential
    tasks:
      - {id: bad, type: fail, message: "no {{ secret('API_TOKEN') }}"}
"""
    row = await one.engine.execute(one.flow(flow))
    assert row["state"] == "FAILED"
    spans = one.spans()
    assert tree(spans) == [("execution default.boom", [("step group", [("step bad", [])])])]
    root, group, bad = (named(spans, n)[0] for n in ("execution default.boom", "step group", "step bad"))
    assert root.status.status_code == group.status.status_code == bad.status.status_code == StatusCode.ERROR
    assert bad.attributes[A.ERROR_TYPE] == "FailTask"
    assert root.status.description == "******"  # a message made with secret() is masked whole
    for span in spans:
        for text in every_string(span):
            assert SECRET not in text


@sync
async def test_by_default_pure_steps_are_events_on_their_parent_span(traced, monkeypatch) -> None:
    monkeypatch.setenv("HUB_TRACE_PURE_STEPS", "events")
    one = traced()
    flow = """
id: light
tasks:
  - id: fan
    type: parallel
    tasks:
      - {id: a, type: set, values: {x: 1}}
      - {id: b, type: log, message: "hello {{ secret('API_TOKEN') }}"}
  - {id: bad, type: fail, message: "no {{ secret('API_TOKEN') }}", allow_failure: true}
"""
    row = await one.engine.execute(one.flow(flow))
    assert row["state"] == "WARNING"
    spans = one.spans()
    assert tree(spans) == [("execution default.light", [("step fan", [])])]
    fan = named(spans, "step fan")[0]
    root = named(spans, "execution default.light")[0]
    fan_events = {e.name: dict(e.attributes) for e in fan.events if e.name.startswith("step ")}
    assert set(fan_events) == {"step a", "step b"}
    assert fan_events["step a"][A.STEP_STATE] == "SUCCESS" and fan_events["step a"][A.STEP_TYPE] == "set"
    bad = next(dict(e.attributes) for e in root.events if e.name == "step bad")
    assert bad[A.STEP_STATE] == "WARNING" and bad["hub.step.error"] == "******"  # allowed failure
    for span in spans:
        for text in every_string(span):
            assert SECRET not in text


@sync
async def test_values_made_from_a_secret_are_in_no_span(traced) -> None:
    one = traced()
    flow = """
id: derived
tasks:
  - {id: say, type: log, message: "{{ secret('API_TOKEN') | upper }}"}
  - {id: call, type: test.tool, token: "{{ secret('API_TOKEN')[::-1] }}", failures: 0}
  - {id: bad, type: fail, message: "no {{ secret('API_TOKEN') | b64encode }}"}
"""
    row = await one.engine.execute(one.flow(flow))
    assert row["state"] == "FAILED"
    import base64

    derived = [SECRET.upper(), SECRET[::-1], base64.b64encode(SECRET.encode()).decode()]
    texts = [text for span in one.spans() for text in every_string(span)]
    assert texts and not [text for text in texts if any(value in text for value in derived)]
