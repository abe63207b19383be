"""llm.chat with tools, native structured output, streaming and images — over both transports,
against the scripted OpenAI-compatible server (tool calls and streamed chunks in the real wire
format)."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest

from hub.llm.chat import Chat, ChatParams, OutputInvalid, UnexpectedToolCalls
from hub.llm.fake import Reply
from hub.llm.records import CallLog

pytestmark = pytest.mark.anyio

SEARCH = {
    "name": "search_contacts",
    "description": "Find contacts by name or email.",
    "parameters": {
        "type": "object", "additionalProperties": False, "required": ["query"],
        "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
    },
}
ASK = [{"role": "user", "content": "Find Ada Lovelace"}]


async def chat(ctx: Any, **params: Any) -> Any:
    params.setdefault("messages", ASK)
    return await Chat().run(ctx, ChatParams.model_validate(params))


def records(ctx: Any) -> list[dict[str, Any]]:
    return CallLog(ctx.store.engine).calls(ctx.execution_id)


async def test_tool_calls_are_the_output_with_parsed_arguments(contexts, fake):
    fake.enqueue(Reply(tool_calls=[{"name": "search_contacts", "arguments": {"query": "Ada", "limit": 3}, "id": "c1"}]))
    ctx = contexts.make()
    out = await chat(ctx, tools=[SEARCH], tool_choice="search_contacts")
    assert out["value"] is None and out["finish_reason"] == "tool_calls"
    assert out["tool_calls"] == [{"id": "c1", "name": "search_contacts", "arguments": {"query": "Ada", "limit": 3}}]
    assert out["message"]["role"] == "assistant"
    assert json.loads(out["message"]["tool_calls"][0]["function"]["arguments"]) == {"query": "Ada", "limit": 3}
    request = fake.requests[0]
    assert request["tools"] == [{"type": "function", "function": SEARCH}]
    assert request["tool_choice"] == {"type": "function", "function": {"name": "search_contacts"}}
    [record] = records(ctx)
    assert record["status"] == "ok" and record["response"].startswith("search_contacts(")


async def test_tool_calls_nobody_asked_for_fail_the_step_never_an_empty_success(contexts, fake):
    fake.enqueue(Reply(tool_calls=[{"name": "delete_everything", "arguments": {}}]))
    ctx = contexts.make()
    with pytest.raises(UnexpectedToolCalls) as failed:
        await chat(ctx)
    assert "delete_everything" in str(failed.value) and failed.value.retryable is False
    assert failed.value.data["tool_calls"][0]["name"] == "delete_everything"
    [record] = records(ctx)
    assert record["status"] == "error" and record["errors"][0]["type"] == "UnexpectedToolCalls"


async def test_invalid_tool_arguments_are_sent_back_as_tool_messages_and_repaired(contexts, fake):
    fake.enqueue(
        Reply(tool_calls=[{"name": "search_contacts", "arguments": '{"limit": 0}', "id": "bad"}]),
        Reply(tool_calls=[{"name": "search_contacts", "arguments": {"query": "Ada"}, "id": "good"}]),
    )
    ctx = contexts.make()
    out = await chat(ctx, tools=[SEARCH])
    assert out["rounds"] == 2 and out["tool_calls"][0]["arguments"] == {"query": "Ada"}
    repair = fake.requests[1]["messages"]
    assert repair[-2]["role"] == "assistant" and repair[-2]["tool_calls"][0]["id"] == "bad"
    assert repair[-1]["role"] == "tool" and repair[-1]["tool_call_id"] == "bad"
    assert "'query' is a required property" in repair[-1]["content"]
    assert [r["status"] for r in records(ctx)] == ["invalid", "ok"]


async def test_required_tool_choice_and_a_text_answer_is_re_asked_then_fails(contexts, fake):
    fake.default = Reply("I would rather chat.")
    with pytest.raises(OutputInvalid) as failed:
        await chat(contexts.make(), tools=[SEARCH], tool_choice="required", max_repairs=1)
    assert "call one of the tools" in str(failed.value)


def test_tool_declarations_are_checked_when_the_step_loads():
    with pytest.raises(ValueError, match="tool_choice 'lookup' is not one of the tools"):
        ChatParams.model_validate({"messages": ASK, "tools": [SEARCH], "tool_choice": "lookup"})
    with pytest.raises(ValueError, match="tool names must be unique"):
        ChatParams.model_validate({"messages": ASK, "tools": [SEARCH, SEARCH]})
    with pytest.raises(ValueError, match="tool_choice needs tools"):
        ChatParams.model_validate({"messages": ASK, "tool_choice": "required"})


async def test_the_output_schema_is_sent_as_response_format_and_still_validated(contexts, fake):
    fake.enqueue('{"category": "refund"}', '{"category": "billing", "urgency": "low"}')
    ctx = contexts.make()
    out = await chat(ctx, prompt="triage", messages=None, vars={"body": "x"})
    assert out["value"]["category"] == "billing" and out["rounds"] == 2  # the hub's check is the safety net
    fmt = fake.requests[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["required"] == ["category", "urgency"]
    assert fmt["json_schema"]["strict"] is False  # the triage schema is open: strict mode would refuse it
    closed = {"type": "object", "additionalProperties": False, "required": ["a"], "properties": {"a": {"type": "string"}}}
    fake.enqueue('{"a": "x"}')
    await chat(contexts.make(), output_schema=closed)
    assert fake.requests[-1]["response_format"]["json_schema"]["strict"] is True


@pytest.mark.parametrize(("mode", "expected"), [("json_object", {"type": "json_object"}), ("prompt", None)])
async def test_structured_output_modes(contexts, fake, mode, expected):
    fake.enqueue('{"a": 1}')
    await chat(contexts.make(), output_schema={"type": "object"}, structured_output=mode)
    assert fake.requests[0].get("response_format") == expected
    assert '"type": "object"' in fake.requests[0]["messages"][0]["content"]  # the schema is in the prompt too


async def test_a_streamed_answer_sends_tokens_and_stores_the_whole_text(contexts, fake):
    fake.enqueue(Reply("Dear Ada, thanks for your order.", prompt_tokens=12, completion_tokens=7))
    events: list[dict[str, Any]] = []
    ctx = dataclasses.replace(contexts.make(), emit=events.append)
    out = await chat(ctx, stream=True)
    assert out["text"] == out["value"] == "Dear Ada, thanks for your order."
    tokens = [e["text"] for e in events if e["event"] == "token"]
    assert len(tokens) == 6 and "".join(tokens) == out["text"]
    assert fake.requests[0]["stream"] is True and fake.requests[0]["stream_options"] == {"include_usage": True}
    [record] = records(ctx)  # usage from the stream's last chunk, priced
    assert (record["input_tokens"], record["output_tokens"]) == (12, 7) and record["cost"] > 0
    assert record["response"] == out["text"]


async def test_streamed_tool_calls_are_put_back_together(contexts, fake):
    fake.enqueue(Reply(tool_calls=[{"name": "search_contacts", "arguments": {"query": "Ada Lovelace"}, "id": "s1"}]))
    out = await chat(contexts.make(), tools=[SEARCH], stream=True)
    assert out["tool_calls"] == [{"id": "s1", "name": "search_contacts", "arguments": {"query": "Ada Lovelace"}}]


async def test_a_streamed_json_answer_is_validated_like_any_other(contexts, fake):
    fake.enqueue('{"category": "bug", "urgency": "high"}')
    out = await chat(contexts.make(), prompt="triage", messages=None, vars={"body": "x"}, stream=True)
    assert out["value"] == {"category": "bug", "urgency": "high"}


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()


async def test_images_as_content_parts_from_a_url_base64_data_and_a_file(contexts, fake, tmp_path):
    receipt = tmp_path / "receipt.png"
    receipt.write_bytes(b"\x89PNG\r\n\x1a\n fake image bytes")
    fake.enqueue("a receipt for 12 EUR")
    out = await chat(contexts.make(), messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is on these?"},
        {"type": "image", "url": "https://example.com/a.png", "detail": "low"},
        {"type": "image", "data": PNG, "media_type": "image/png"},
        {"type": "image", "path": str(receipt)},
        {"type": "file", "data": "JVBERi0=", "media_type": "application/pdf", "filename": "nda.pdf"},
    ]}])
    assert out["value"] == "a receipt for 12 EUR"
    parts = fake.requests[0]["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "What is on these?"}
    assert parts[1] == {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}
    assert parts[2]["image_url"]["url"] == f"data:image/png;base64,{PNG}"
    assert parts[3]["image_url"]["url"] == f"data:image/png;base64,{PNG}"  # the file, read and encoded
    assert parts[4]["type"] == "file" and parts[4]["file"]["filename"] == "nda.pdf"


async def test_an_image_file_that_cannot_be_read_fails_the_step_clearly(contexts, fake):
    with pytest.raises(Exception, match=r"content\[0\] \(image\): cannot read /nope.png"):
        await chat(contexts.make(), messages=[{"role": "user", "content": [{"type": "image", "path": "/nope.png"}]}])
    assert fake.requests == []
