"""The tools an agent step offers, resolved when it starts: task kinds as written, flows with their
inputs as the schema, and the tools an MCP server lists.

An MCP server's listing is the child step ``<step>.mcp[i]``, committed like a turn: an agent that
runs again (a resume, an approval) offers the model the very tools it was offered before.
"""

from __future__ import annotations

import re
from typing import Any

from hub.agent.journal import FAILED, SUCCESS, Journal
from hub.agent.spec import AgentParams, AgentTool
from hub.core.tasks import RESOURCES
from hub.errors import HubError, TaskError, error_dict
from hub.tasks.base import Params as BaseParams
from hub.tasks.base import StepResources, TaskContext

FLOW_TASK = "subflow"  # the step type recorded for a flow tool's child step


class FlowTool:
    """Runs a flow as a child execution of the agent step (once per tool call, whatever re-runs).
    Output: ``{"execution_id", "state", "outputs"}``; a child that failed is the call's error."""

    type = FLOW_TASK

    class Params(BaseParams):
        flow: str
        inputs: dict[str, Any] = {}

    async def run(self, ctx: TaskContext, params: Any) -> Any:
        from hub.errors import Paused

        if ctx.run_flow is None:
            raise TaskError("a flow tool needs the engine (run the flow with hub run, a worker or the API)",
                            retryable=False)
        child = await ctx.run_flow(params.flow, params.inputs, ctx.idempotency_key)
        if child["state"] == "PAUSED":
            raise Paused(f"flow {params.flow} (execution {child['id']}) paused", data={"execution_id": child["id"]})
        if child["state"] not in ("SUCCESS", "WARNING"):
            error = child.get("error") or {}
            raise TaskError(f"flow {params.flow} (execution {child['id']}) ended {child['state']}: "
                            f"{error.get('message', '')}", retryable=False)
        return {"execution_id": child["id"], "state": child["state"], "outputs": child.get("outputs") or {}}


async def resolve(journal: Journal, params: AgentParams, registry: Any, resources: StepResources) -> dict[str, AgentTool]:
    """The tools by the name the model sees; a mistake of the flow raises a non-retryable TaskError."""
    tools: dict[str, AgentTool] = {}
    for index, tool in enumerate(params.tools):
        if tool.mcp is not None:
            found = await _mcp_tools(journal, index, tool, registry, resources)
        elif tool.flow is not None:
            found = [_flow_tool(journal.ctx, tool)]
        else:
            try:
                registry.get(tool.task)
            except HubError as exc:
                raise TaskError(f"tool {tool.name!r}: {exc}", retryable=False) from None
            found = [tool]
        for each in found:
            assert each.name is not None
            if each.name in tools:
                raise TaskError(f"two tools are named {each.name!r} (tools[{index}]); give an MCP server a prefix "
                                "or a tool another name", retryable=False)
            tools[each.name] = each
    return tools


def _flow_tool(ctx: TaskContext, tool: AgentTool) -> AgentTool:
    from hub.flow.input_schema import inputs_schema
    from hub.flow.loader import load_text

    assert tool.flow is not None and ctx.store is not None
    namespace, _, flow_id = tool.flow.rpartition(".")
    try:
        _, source = ctx.store.get_flow_source(namespace or ctx.namespace, flow_id)
        flow = load_text(source)
    except HubError as exc:
        raise TaskError(f"flow tool {tool.flow!r}: {exc}; deploy the flow first", retryable=False) from None
    schema = inputs_schema(flow)
    for fixed in tool.with_:  # fixed inputs are not the model's to fill
        schema["properties"].pop(fixed, None)
        if fixed in schema.get("required", []):
            schema["required"].remove(fixed)
    return tool.model_copy(update={
        "name": tool.name or flow.id, "description": tool.description or flow.description or f"Run the flow {flow.key}.",
        "flow": f"{flow.namespace}.{flow.id}", "parameters": tool.parameters or schema,
    })


def needed_kind(registry: Any, name: str, plugin: str) -> Any:
    """The task kind ``name`` the agent runs through (its model turns, approvals, MCP listings):
    a clear step error, not an AttributeError, when the process has no plugin giving it."""
    kind = registry.get(name)
    if kind is None:
        raise TaskError(f"llm.agent needs the {name!r} task kind, which the {plugin} plugin gives; "
                        f"this process has not loaded it (see 'hub plugins')", retryable=False)
    return kind


async def _mcp_tools(journal: Journal, index: int, tool: AgentTool, registry: Any,
                     resources: StepResources) -> list[AgentTool]:
    kind = needed_kind(registry, "mcp.tools", "mcp")
    path = f"{journal.ctx.path}.mcp[{index}]"
    listing = journal.done(path)
    if listing is None:
        try:
            params = kind.Params.model_validate({"server": tool.mcp})
        except ValueError as exc:
            raise TaskError(f"tools[{index}].mcp: {exc}", retryable=False) from None
        row, attempt = journal.start(path, kind.type, {"server": tool.mcp})
        child = journal.child(path, attempt)
        ctx = child.lending(RESOURCES, resources)
        try:
            listing = await kind().run(ctx, params)
        except Exception as exc:
            journal.finish(row, path, FAILED, error=error_dict(exc))
            raise
        journal.finish(row, path, SUCCESS, output=listing)
    offered = [t for t in listing["tools"] if tool.allow is None or t["name"] in tool.allow]
    missing = sorted(set(tool.allow or ()) - {t["name"] for t in listing["tools"]})
    if missing:
        raise TaskError(f"tools[{index}].allow: the MCP server {listing.get('server')} has no tool "
                        f"{', '.join(missing)}", retryable=False)
    return [AgentTool.model_validate({
        "name": _name(f"{tool.prefix}_{t['name']}" if tool.prefix else t["name"]),
        "description": t["description"], "task": "mcp.call", "parameters": t["input_schema"],
        "with": {"server": tool.mcp, "tool": t["name"]}, "arguments_into": "arguments",
        "requires_approval": tool.gated(t["name"]), "retry": tool.retry,
    }) for t in offered]


def _name(name: str) -> str:
    """A tool name models accept (letters, digits, _ and -, at most 64)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "tool"
