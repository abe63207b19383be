"""What a flow writes for an ``llm.agent`` step.

```yaml
- id: assistant
  type: llm.agent
  model: fast
  instructions: You are the CRM assistant of ACME. Use the tools; never guess an id.
  input: "{{ inputs.request }}"
  tools:
    - name: search_contact
      description: Find a contact by name or email.
      task: crm.search                       # a task kind: what runs
      with: {object: contacts}               # fixed parameters (templates rendered by the flow)
      parameters:                            # JSON Schema of what the model fills in
        type: object
        required: [query]
        properties: {query: {type: string}}
    - name: update_deal
      task: crm.upsert
      with: {object: deals, id_property: hs_object_id}
      arguments_into: records.0             # put the model's arguments here (default: merged at the top)
      parameters: {...}
      requires_approval: true
    - flow: sales.lookup_order               # a flow, run as a child execution; its inputs are the schema
      with: {tenant: acme}                   # fixed inputs
    - mcp: {command: uvx, args: [tickets-mcp]}   # an MCP server's tools (or {url: ..., headers: ...})
      allow: [find_ticket, close_ticket]
      requires_approval: [close_ticket]
  approval: {approvers: [sales-lead@acme.com], channels: [web]}
  max_turns: 8
  max_cost: 0.20
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from hub.flow.models import RetryPolicy
from hub.tasks.base import Params


class AgentTool(Params):
    """A tool the model may call: a hub task kind with fixed and model-filled parameters, a flow
    run as a child execution (its inputs are the schema), or the tools of an MCP server."""

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                             description="What the model calls it (default for a flow: the flow's id).")
    description: str | None = Field(None, description="What it does, for the model.")
    task: str | None = Field(None, description="The task kind that runs (crm.search, http.request, python, ...).")
    flow: str | None = Field(None, description="A flow to run as a child execution (namespace.id, or id in "
                             "this flow's namespace); its inputs are what the model fills in.")
    mcp: dict[str, Any] | None = Field(
        None, description="An MCP server whose tools the model may call: {command, args, env, cwd} (stdio) "
        "or {url, headers} (streamable HTTP), and timeout.")
    allow: list[str] | None = Field(None, description="MCP: only these of the server's tools (default: all).")
    prefix: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,32}$",
                               description="MCP: put '<prefix>_' before the server's tool names.")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with",
                                  description="Fixed parameters of the task (fixed inputs of a flow).")
    parameters: dict[str, Any] | None = Field(
        None, description="JSON Schema of the arguments the model fills in (a flow's: from its inputs; an "
        "MCP tool's: from the server).")
    arguments_into: str | None = Field(
        None,
        description="Where the model's arguments go in the task's parameters, dotted ('kwargs', 'records.0'); "
        "default: merged into them at the top level.",
    )
    requires_approval: bool | list[str] = Field(
        False, description="Pause for a human to approve (and edit) each call; for an MCP server, true or "
        "the names of the tools that need it.")
    retry: RetryPolicy | None = Field(None, description="Retry policy of each call (retryable errors only).")

    @model_validator(mode="after")
    def _one_source(self) -> AgentTool:
        given = [key for key in ("task", "flow", "mcp") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError("a tool is one of: task: <kind>, flow: <namespace.id>, mcp: {command | url}"
                             + (f"; got {' and '.join(given)}" if given else ""))
        if self.mcp is None:
            if self.allow is not None or self.prefix is not None:
                raise ValueError("allow and prefix are for mcp tools")
            if isinstance(self.requires_approval, list):
                raise ValueError("requires_approval is true or false here (a list names an MCP server's tools)")
            if self.task is not None and self.name is None:
                raise ValueError("a task tool needs a name")
        elif self.with_ or self.parameters is not None or self.arguments_into is not None:
            raise ValueError("an MCP server's tools take their schema from the server: no with, parameters "
                             "or arguments_into")
        return self

    @property
    def arguments_schema(self) -> dict[str, Any]:
        return self.parameters if self.parameters is not None else {"type": "object", "properties": {}}

    def gated(self, tool_name: str | None = None) -> bool:
        """Whether a call of this tool (of ``tool_name``, for an MCP server) needs approval."""
        if isinstance(self.requires_approval, list):
            return tool_name in self.requires_approval
        return self.requires_approval

    def definition(self) -> dict[str, Any]:
        """The tool as the model is offered it (``llm.chat``'s ``tools``: OpenAI's function form)."""
        function = {"name": self.name, "description": self.description, "parameters": self.arguments_schema}
        return {"type": "function", "function": {k: v for k, v in function.items() if v is not None}}


class ApprovalSpec(Params):
    """Who approves the tool calls that need it, and where they are asked."""

    approvers: list[str] = Field(min_length=1, description="Emails, Slack user IDs, key:<api key>, group:<name>.")
    channels: list[Any] = Field(default_factory=lambda: ["web"], description="As the approval step's channels.")
    required: int = Field(1, ge=1)
    allow_self_approval: bool = False
    on_timeout: Literal["approve", "reject", "fail"] = "reject"


class AgentParams(Params):
    model: str | None = Field(None, description="Model alias (default: the models file's default).")
    instructions: str = Field(description="The system message: who the agent is, what it may do.")
    input: str | list[dict[str, Any]] = Field(description="The user's request, or a list of messages.")
    tools: list[AgentTool] = Field(default_factory=list, description="The only tools the model may call.")
    approval: ApprovalSpec | None = Field(None, description="Approvers of tools with requires_approval.")
    max_turns: int = Field(10, ge=1, le=100, description="Model turns at most; then the step fails.")
    max_cost: float | None = Field(None, gt=0, description="USD the agent's model calls may spend.")
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    output_schema: dict[str, Any] | None = Field(None, description="JSON Schema of the final answer.")
    stream: bool = Field(False, description="Stream the model's text to hub run and the event stream.")

    @model_validator(mode="after")
    def _consistent(self) -> AgentParams:
        names = [tool.name for tool in self.tools if tool.name and tool.mcp is None]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"tool names must be unique: {', '.join(twice)}")
        gated = [tool.name or tool.flow or "mcp" for tool in self.tools if tool.requires_approval]
        if gated and self.approval is None:
            raise ValueError(f"tool(s) {', '.join(gated)} require approval: add approval: {{approvers: [...]}}")
        return self


def approval_form(tool: AgentTool, arguments: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An approval form with one field per argument, the model's proposal as each default (the
    ``approval`` step's ``form``, which checks the fields)."""
    properties = tool.arguments_schema.get("properties") or {}
    required = set(tool.arguments_schema.get("required") or [])
    form: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys([*properties, *arguments]):
        schema = properties.get(name) or {}
        kind = schema.get("type")
        value = arguments.get(name)
        field: dict[str, Any]
        if schema.get("enum") and all(isinstance(o, str) for o in schema["enum"]):
            field = {"type": "enum", "options": list(schema["enum"])}
        elif kind in ("number", "integer"):
            field = {"type": "number"}
        elif kind == "boolean":
            field = {"type": "bool"}
        elif kind == "string" or (kind is None and isinstance(value, str)):
            long = isinstance(value, str) and (len(value) > 80 or "\n" in value)
            field = {"type": "text" if long else "string"}
        else:
            field = {"type": "json"}
        field.update(default=value, required=name in required)
        if schema.get("description") is not None:
            field["help"] = schema["description"]
        form[name] = field
    return form
