"""The ``llm.agent`` task kind: model → tool calls → results, until the model answers.

Each model turn runs ``llm.chat`` as the child step ``<step>.turn[n]`` (records, budget, spans,
validation of the tool calls against their schemas, repairs), and each tool call is the child step
``<step>.tools[k]`` (:mod:`hub.agent.tools`). When the step runs again — a resume after a crash, or
after an approval — committed turns and tool calls are read back, not redone: the model is not
asked again for a turn it answered and a finished tool is not called again.

Output::

    {"answer": <final text>, "value": <validated answer with output_schema, else the text>,
     "turns": 3, "tool_calls": [{"id", "name", "arguments", "result" | "error", "approval"?, "edited"?}],
     "transcript": [<every message, tool results included>],
     "usage": {"input_tokens", "output_tokens", "cost", "calls"}}
"""

from __future__ import annotations

import json
from typing import Any

from hub.agent.journal import FAILED, PAUSED, SUCCESS, Journal
from hub.agent.spec import AgentParams
from hub.agent.tools import ToolRunner
from hub.agent.toolset import needed_kind, resolve
from hub.core.registry import TASK_REGISTRY
from hub.errors import HubError, Paused, TaskError
from hub.tasks.base import StepResources, TaskContext


class AgentLimit(TaskError):
    """The agent hit ``max_turns`` or ``max_cost`` before answering; the transcript so far is in ``data``."""

    def __init__(self, message: str, transcript: list[dict[str, Any]], tool_calls: list[dict[str, Any]]):
        super().__init__(message, retryable=False, data={"transcript": transcript, "tool_calls": tool_calls})


class Agent:
    """A model that acts through the tools the step lists, each call a durable child step.

    Guards: ``max_turns``, ``max_cost``, the step's ``timeout``, the tool list as the allow-list,
    and ``requires_approval`` on a tool (an approval gate with the proposed arguments, editable).
    """

    type = "llm.agent"
    Params = AgentParams
    pauses = True  # an approval of a tool call pauses it: its start is written before it runs

    @staticmethod
    def check(params: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
        """Flow-load checks that hold whatever the templates render to: gated tools need approvers."""
        tools = params.get("tools")
        if not isinstance(tools, list) or params.get("approval") is not None:
            return []
        return [(("tools", i, "requires_approval"),
                 f"tool {tool.get('name')!r} requires approval: add approval: {{approvers: [...]}} to the step")
                for i, tool in enumerate(tools)
                if isinstance(tool, dict) and tool.get("requires_approval") not in (None, False, [])]

    async def run(self, ctx: TaskContext, params: AgentParams) -> Any:
        from hub.tasks.registry import default_registry

        journal = Journal(ctx)
        registry = ctx.service(TASK_REGISTRY) or default_registry()
        resources = StepResources()  # MCP sessions, kept open for every call of this run
        try:
            tools = await resolve(journal, params, registry, resources)
            runner = ToolRunner(journal, params, registry, tools, resources)
            return await self._loop(journal, params, runner)
        finally:  # closed as after a normal end: what the loop raised is not the sessions' business
            await resources.aclose()

    async def _loop(self, journal: Journal, params: AgentParams, runner: ToolRunner) -> dict[str, Any]:
        messages: list[dict[str, Any]] = [{"role": "system", "content": params.instructions}]
        messages += [{"role": "user", "content": params.input}] if isinstance(params.input, str) else params.input
        usage = {"input_tokens": 0, "output_tokens": 0, "cost": 0.0, "calls": 0}
        calls: list[dict[str, Any]] = []
        definitions = [tool.definition() for tool in runner.tools.values()]
        for turn in range(1, params.max_turns + 1):
            if params.max_cost is not None and usage["cost"] >= params.max_cost:
                raise AgentLimit(f"the agent spent ${usage['cost']:.6f} of its max_cost ${params.max_cost:g} "
                                 f"without answering", messages, calls)
            answer = await self._turn(journal, params, runner.registry, turn, messages, definitions)
            for key in usage:
                usage[key] += answer["usage"][key]
            if not answer["tool_calls"]:
                messages.append({"role": "assistant", "content": answer["text"]})
                return {"answer": answer["text"], "value": answer["value"], "turns": turn, "tool_calls": calls,
                        "transcript": messages, "usage": usage}
            messages.append(answer["message"])
            for call in answer["tool_calls"]:
                record = await runner.call(len(calls) + 1, call)
                calls.append(record)
                content = record["result"] if "result" in record else {"error": record["error"]}
                messages.append({"role": "tool", "tool_call_id": call["id"],
                                 "content": json.dumps(content, ensure_ascii=False, default=str)})
        raise AgentLimit(f"the agent did not answer within max_turns {params.max_turns}", messages, calls)

    @staticmethod
    async def _turn(journal: Journal, params: AgentParams, registry: Any, turn: int, messages: list[dict[str, Any]],
                    definitions: list[dict[str, Any]]) -> dict[str, Any]:
        """One model turn: read back when it was answered before, else ask (``llm.chat``)."""
        path = f"{journal.ctx.path}.turn[{turn}]"
        done = journal.done(path)
        if done is not None:
            return done
        kind = needed_kind(registry, "llm.chat", "llm")  # the LLM feature's kind, found as any plugin's is
        chat = kind.Params.model_validate({
            "messages": messages, "model": params.model, "temperature": params.temperature,
            "max_tokens": params.max_tokens, "output_schema": params.output_schema, "stream": params.stream,
            "tools": definitions or None,
        })
        row, attempt = journal.start(path, "llm.chat", {"turn": turn, "messages": len(messages)})
        try:
            answer = await kind().run(journal.child(path, attempt), chat)
        except Paused as pause:  # not expected of a model call; kept consistent
            journal.finish(row, path, PAUSED, data=pause.data)
            raise
        except Exception as exc:
            journal.finish(row, path, FAILED, error=exc.to_dict() if isinstance(exc, HubError) else
                           {"type": type(exc).__name__, "message": str(exc), "retryable": True})
            raise
        journal.finish(row, path, SUCCESS, output=answer)
        return dict(answer)
