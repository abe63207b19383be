"""Tools a model may call: their declarations and the checking of the calls it makes.

A tool is declared in OpenAI's shape or the short one (both in a flow)::

    tools:
      - {name: search_contacts, description: Find a contact, parameters: {type: object, properties: {q: {type: string}}}}
      - {type: function, function: {name: get_deal, parameters: {...}}}

A call the model makes is ``{"id", "name", "arguments"}`` with ``arguments`` as the JSON text it
wrote; :func:`check_calls` parses it and validates it against the tool's ``parameters`` schema,
so that every problem can be sent back to the model (as a ``tool`` message) to repair.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.llm.validation import schema_errors


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="What the model calls it.")
    description: str | None = None
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}, description="JSON Schema of the arguments."
    )
    strict: bool | None = None


class ToolDef(BaseModel):
    """A tool for ``llm.chat``: OpenAI's ``{type: function, function: {...}}`` or the short form."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["function"] = "function"
    function: FunctionDef

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        if isinstance(value, dict) and "function" not in value and "name" in value:
            return {"type": value.get("type", "function"), "function": {k: v for k, v in value.items() if k != "type"}}
        return value

    def openai(self) -> dict[str, Any]:
        return {"type": "function", "function": self.function.model_dump(exclude_none=True)}


ToolChoice = Literal["auto", "none", "required"] | str | dict[str, Any]


def tool_choice_param(choice: ToolChoice | None, names: set[str]) -> Any:
    """``tool_choice`` as the wire format wants it: a tool's name becomes OpenAI's
    ``{type: function, function: {name}}``. Raises ``ValueError`` for a name that is no tool."""
    if choice is None or isinstance(choice, dict) or choice in ("auto", "none", "required"):
        return choice
    if choice not in names:
        raise ValueError(f"tool_choice {choice!r} is not one of the tools ({', '.join(sorted(names)) or 'none'})")
    return {"type": "function", "function": {"name": choice}}


def check_calls(calls: list[dict[str, Any]], tools: dict[str, ToolDef]) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Parse and validate the model's tool calls against the declared ``tools``.

    Returns the calls with ``arguments`` parsed (a dict), and the problems by call id (empty when
    every call is fine)."""
    parsed: list[dict[str, Any]] = []
    problems: dict[str, list[str]] = {}
    for call in calls:
        errors: list[str] = []
        tool = tools.get(call["name"])
        arguments: Any = None
        if tool is None:
            errors.append(f"there is no tool {call['name']!r}; the tools are {', '.join(sorted(tools)) or 'none'}")
        else:
            text = call.get("arguments") or "{}"
            try:
                arguments = json.loads(text) if isinstance(text, str) else text
            except json.JSONDecodeError as exc:
                errors.append(f"the arguments are not valid JSON ({exc.msg} at character {exc.pos})")
            else:
                if not isinstance(arguments, dict):
                    errors.append("the arguments must be a JSON object")
                else:
                    errors += schema_errors(tool.function.parameters, arguments)
        if errors:
            problems[call["id"]] = errors
        parsed.append({"id": call["id"], "name": call["name"], "arguments": arguments})
    return parsed, problems


def assistant_message(text: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant turn that made ``calls`` (arguments as JSON text), to continue the conversation."""
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {
                "id": call["id"],
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": call["arguments"] if isinstance(call["arguments"], str) else json.dumps(call["arguments"]),
                },
            }
            for call in calls
        ],
    }


def is_strict_schema(schema: Any) -> bool:
    """Whether ``schema`` meets OpenAI's strict structured-output subset: every object closed
    (``additionalProperties: false``) with every property required."""
    if isinstance(schema, list):
        return all(is_strict_schema(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False or set(schema.get("required") or []) != set(properties):
            return False
    return all(is_strict_schema(v) for k, v in schema.items() if k not in ("enum", "const", "default", "examples"))


def response_format(schema: dict[str, Any], mode: str, name: str = "output") -> dict[str, Any] | None:
    """The ``response_format`` to send for ``mode`` (``json_schema``, ``json_object`` or ``prompt``)."""
    if mode == "json_object":
        return {"type": "json_object"}
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": is_strict_schema(schema)}}
    return None
