"""One tool call of an agent: approval first when the tool needs it, then the task kind runs as
a durable child step, retried by the tool's own policy, traced as ``execute_tool {name}``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError

from hub.agent.journal import FAILED, PAUSED, SUCCESS, Journal
from hub.agent.spec import AgentParams, AgentTool, approval_form
from hub.agent.toolset import FLOW_TASK, FlowTool, needed_kind
from hub.core import attributes as A
from hub.core.tasks import RESOURCES
from hub.core.tracing import TRACING, lookup
from hub.engine.retry import backoff, should_retry
from hub.errors import HubError, InvalidParameters, Paused, TaskError, error_dict
from hub.tasks.base import StepResources


def place(params: dict[str, Any], dotted: str | None, arguments: dict[str, Any]) -> dict[str, Any]:
    """The task's parameters: the fixed ones with the model's arguments merged at the top, or put
    at ``dotted`` (``kwargs``, ``records.0``: list indices create the list)."""
    out = json.loads(json.dumps(params))  # a deep copy: the fixed parameters are shared by every call
    if not dotted:
        return {**out, **arguments}
    parts = dotted.split(".")
    node: Any = out
    for part, following in zip(parts, [*parts[1:], None], strict=True):
        key: Any = int(part) if part.isdigit() else part
        if following is None:
            if isinstance(node, list):
                node.extend([None] * (key + 1 - len(node)))
                node[key] = {**(node[key] or {}), **arguments}
            else:
                node[key] = {**(node.get(key) or {}), **arguments}
        else:
            empty: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                node.extend([None] * (key + 1 - len(node)))
                node[key] = node[key] if node[key] is not None else empty
            else:
                node.setdefault(key, empty)
            node = node[key]
    return out


class ToolRunner:
    """Runs the tool calls of one agent step."""

    def __init__(self, journal: Journal, params: AgentParams, registry: Any, tools: dict[str, AgentTool],
                 resources: StepResources):
        self.journal, self.params, self.registry = journal, params, registry
        self.tools, self.resources = tools, resources

    async def call(self, index: int, call: dict[str, Any]) -> dict[str, Any]:
        """The record of call number ``index``: ``{id, name, arguments, result | error, ...}``.
        Raises :class:`Paused` while an approval (or a pausing task) waits."""
        path = f"{self.journal.ctx.path}.tools[{index}]"
        done = self.journal.done(path)
        if done is not None:
            return dict(done)
        tool = self.tools[call["name"]]
        record: dict[str, Any] = {"id": call["id"], "name": tool.name, "arguments": call["arguments"]}
        arguments = dict(call["arguments"] or {})
        if tool.gated():
            decision = await self._approval(path, tool, arguments)
            record["approval"] = {k: decision.get(k) for k in ("decision", "decided_by", "comment")}
            if not decision.get("approved"):
                who = (decision.get("decided_by") or {}).get("who") or "the approvers"
                record["error"] = f"the call was not approved ({decision.get('decision')} by {who})" + (
                    f": {decision['comment']}" if decision.get("comment") else "")
                self._write(path, tool, arguments, record)
                return record
            edited = {k: v for k, v in (decision.get("form") or {}).items() if k in arguments or v is not None}
            arguments = {**arguments, **_typed(tool, edited)}
            record["arguments"] = arguments
            if arguments != call["arguments"]:
                record["edited"] = True
        return await self._run(path, tool, arguments, record)

    def _write(self, path: str, tool: AgentTool, arguments: dict[str, Any], record: dict[str, Any]) -> None:
        row, _ = self.journal.start(path, tool.task or FLOW_TASK, {"tool": tool.name, "arguments": arguments})
        self.journal.finish(row, path, SUCCESS, output=record)

    async def _approval(self, path: str, tool: AgentTool, arguments: dict[str, Any]) -> dict[str, Any]:
        gate_path = f"{path}.approval"
        done = self.journal.done(gate_path)
        if done is not None:
            return dict(done)
        spec = self.params.approval
        assert spec is not None  # checked when the step's parameters validate
        kind = needed_kind(self.registry, "approval", "approvals")  # the approvals feature's gate, as any plugin's kind
        params = kind.Params.model_validate({
            **spec.model_dump(exclude_none=True),
            "title": f"Approve the agent's call of {tool.name}",
            "message": f"The agent wants to call **{tool.name}** ({tool.description or tool.task}) with:\n\n"
                       f"{json.dumps(arguments, indent=2, ensure_ascii=False)}\n\nEdit the arguments below if needed.",
            "form": approval_form(tool, arguments),
        })
        row, attempt = self.journal.start(gate_path, "approval", {"tool": tool.name, "arguments": arguments})
        try:  # the gate hands out the child's own token: a decision ends it through engine.complete
            decision = await kind().run(self.journal.child(gate_path, attempt, row), params)
        except Paused as pause:
            ended = self.journal.pause(row, gate_path, {**pause.data, "reason": pause.reason})
            if ended is None:
                raise
            return _answer(ended)  # decided before it had finished pausing
        except HubError as exc:
            self.journal.finish(row, gate_path, FAILED, error=exc.to_dict())
            raise
        self.journal.finish(row, gate_path, SUCCESS, output=decision)
        return dict(decision)

    async def _run(self, path: str, tool: AgentTool, arguments: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        if tool.flow is not None:
            kind: Any = FlowTool
            rendered = {"flow": tool.flow, "inputs": {**tool.with_, **arguments}}
        else:
            kind = self.registry.get(tool.task)
            rendered = place(tool.with_, tool.arguments_into, arguments)
        started = time.monotonic()
        local = 0
        tracer = lookup(TRACING).tracer()
        while True:
            local += 1
            row, attempt = self.journal.start(path, kind.type, rendered)
            span = tracer.start_span(f"{A.OPERATION_EXECUTE_TOOL} {tool.name}", kind=SpanKind.INTERNAL, attributes={
                A.GEN_AI_OPERATION_NAME: A.OPERATION_EXECUTE_TOOL, A.GEN_AI_TOOL_NAME: tool.name,
                A.GEN_AI_TOOL_CALL_ID: str(record["id"]), A.TASK_TYPE: kind.type,
            })
            try:
                try:
                    params = kind.Params.model_validate(rendered)
                except ValidationError as exc:
                    raise InvalidParameters.after_rendering(str(tool.name), exc) from None
                child = self.journal.child(path, attempt)
                ctx = child.lending(RESOURCES, self.resources)
                result = await kind().run(ctx, params)
            except Paused as pause:
                span.end()
                self.journal.finish(row, path, PAUSED, data={**pause.data, "reason": pause.reason})
                raise
            except Exception as exc:  # a failed tool call is data for the model, after its retries
                error = error_dict(exc)
                span.set_status(Status(StatusCode.ERROR, str(error.get("message"))))
                span.end()
                delay = backoff(tool.retry, local) if tool.retry else 0.0
                if should_retry(tool.retry, error, local, time.monotonic() - started, delay):
                    self.journal.finish(row, path, FAILED, error={**error, "retry_in": round(delay, 3)})
                    await asyncio.sleep(delay)
                    continue
                final = {**record, "error": f"{error.get('type')}: {error.get('message')}"}
                self.journal.finish(row, path, FAILED, error=error)
                self._write(path, tool, arguments, final)  # the failure is the call's committed answer
                return final
            span.end()
            done = {**record, "result": _plain(result)}
            self.journal.finish(row, path, SUCCESS, output=done)
            return done


def _answer(ended: dict[str, Any]) -> dict[str, Any]:
    """The output of a child run that ``engine.complete`` ended; its error raised when it failed."""
    if ended["state"] == SUCCESS:
        return dict(ended["output"] or {})
    error = ended.get("error") or {}
    raise TaskError(f"{error.get('type', 'Failed')}: {error.get('message', 'the approval failed')}", retryable=False)


def _typed(tool: AgentTool, values: dict[str, Any]) -> dict[str, Any]:
    """Form values back in their schema's types (a form's numbers are floats)."""
    properties = tool.arguments_schema.get("properties") or {}
    out = {}
    for name, value in values.items():
        if (properties.get(name) or {}).get("type") == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[name] = value
    return out


def _plain(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value, fallback=str)
