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
  approval: {approvers: [sales-lead@acme.com], channels: [web]}
  max_turns: 8
  max_cost: 0.20
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from hub.approvals.forms import FormField
from hub.flow.models import RetryPolicy
from hub.llm.tools import ToolDef
from hub.tasks.base import Params


class AgentTool(Params):
    """One tool the model may call: a hub task kind with fixed and model-filled parameters."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="What the model calls it.")
    description: str | None = Field(None, description="What it does, for the model.")
    task: str = Field(description="The task kind that runs (crm.search, http.request, python, ...).")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="Fixed parameters of the task.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of the arguments the model fills in.",
    )
    arguments_into: str | None = Field(
        None,
        description="Where the model's arguments go in the task's parameters, dotted ('kwargs', 'records.0'); "
        "default: merged into them at the top level.",
    )
    requires_approval: bool = Field(False, description="Pause for a human to approve (and edit) each call.")
    retry: RetryPolicy | None = Field(None, description="Retry policy of each call (retryable errors only).")

    def definition(self) -> ToolDef:
        return ToolDef.model_validate({"name": self.name, "description": self.description, "parameters": self.parameters})


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
        names = [tool.name for tool in self.tools]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"tool names must be unique: {', '.join(twice)}")
        gated = [tool.name for tool in self.tools if tool.requires_approval]
        if gated and self.approval is None:
            raise ValueError(f"tool(s) {', '.join(gated)} require approval: add approval: {{approvers: [...]}}")
        return self


def approval_form(tool: AgentTool, arguments: dict[str, Any]) -> dict[str, FormField]:
    """An approval form with one field per argument, the model's proposal as each default."""
    properties = tool.parameters.get("properties") or {}
    required = set(tool.parameters.get("required") or [])
    form: dict[str, FormField] = {}
    for name in dict.fromkeys([*properties, *arguments]):
        schema = properties.get(name) or {}
        kind = schema.get("type")
        value = arguments.get(name)
        if schema.get("enum") and all(isinstance(o, str) for o in schema["enum"]):
            field = FormField(type="enum", options=list(schema["enum"]), default=value)
        elif kind in ("number", "integer"):
            field = FormField(type="number", default=value)
        elif kind == "boolean":
            field = FormField(type="bool", default=value)
        elif kind == "string" or (kind is None and isinstance(value, str)):
            long = isinstance(value, str) and (len(value) > 80 or "\n" in value)
            field = FormField(type="text" if long else "string", default=value)
        else:
            field = FormField(type="json", default=value)
        form[name] = field.model_copy(update={"required": name in required, "help": schema.get("description")})
    return form
