"""Task kinds the telemetry tests register: a gate that pauses, a flaky tool, a model call."""

from __future__ import annotations

from typing import Any

from hub.errors import ConnectorError, Paused
from hub.tasks.base import Params, TaskContext
from hub.telemetry.genai import llm_call_span

CALLS: dict[str, int] = {}


class GateParams(Params):
    message: str = "approve?"


class Gate:
    """Pauses on its first run; returns the decision when resumed (like an approval gate)."""

    type = "test_gate"
    Params = GateParams

    async def run(self, ctx: TaskContext, params: GateParams) -> Any:
        if not ctx.state:
            raise Paused("waiting for a decision", data={"asked": params.message})
        by = {"who": "Ana", "identity": "ana@example.com", "channel": "slack", "at": "2026-01-01T00:00:00Z"}
        return {"decision": "approved", "decided_by": by, "asked": ctx.state["asked"]}


class ToolParams(Params):
    token: str
    failures: int = 0


class Tool:
    """A connector-ish kind: fails ``failures`` times with the token in the message, then works."""

    type = "test.tool"
    Params = ToolParams

    async def run(self, ctx: TaskContext, params: ToolParams) -> Any:
        key = f"{ctx.execution_id}:{ctx.path}"
        CALLS[key] = CALLS.get(key, 0) + 1
        if CALLS[key] <= params.failures:
            raise ConnectorError(f"upstream refused token {params.token}", status=503, retryable=True)
        ctx.log(f"called with {params.token}")
        return {"ok": True}


class AskParams(Params):
    question: str


class Ask:
    """A model call through the GenAI span API: an invalid answer, one repair, a valid answer."""

    type = "llm.test_chat"
    Params = AskParams

    async def run(self, ctx: TaskContext, params: AskParams) -> Any:
        messages = [{"role": "user", "content": params.question}]
        for round_no, (answer, tokens) in enumerate([("not json", (12, 3)), ('{"score": 0.9}', (20, 5))]):
            with llm_call_span(
                model="gpt-4o-mini", provider="openai", prompt_name="qualifier", prompt_version=3,
                prompt_hash="sha256:abc", messages=messages,
            ) as call:
                call.record_response(
                    response_model="gpt-4o-mini-2024-07-18", input_tokens=tokens[0], output_tokens=tokens[1],
                    finish_reasons=["stop"], cost=0.001, repair_attempts=round_no, output=answer,
                )
            messages = [*messages, {"role": "assistant", "content": answer},
                        {"role": "user", "content": "answer in JSON"}]
        return {"score": 0.9}


def register(registry: Any) -> None:
    for kind in (Gate, Tool, Ask):
        registry.add(kind)
