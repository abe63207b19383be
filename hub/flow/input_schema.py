"""A flow's declared inputs as a JSON Schema object: what a model (an agent's subflow tool) or an
outside assistant (``hub mcp``) is told to fill in to start the flow."""

from __future__ import annotations

from typing import Any

from hub.flow.models import Flow, InputSpec, InputType

_TYPES: dict[InputType, dict[str, Any]] = {
    InputType.string: {"type": "string"},
    InputType.int: {"type": "integer"},
    InputType.float: {"type": "number"},
    InputType.bool: {"type": "boolean"},
    InputType.json: {},
    InputType.datetime: {"type": "string", "format": "date-time"},
    InputType.list: {"type": "array"},
}


def input_schema(spec: InputSpec) -> dict[str, Any]:
    """One input's schema: its type, allowed values, description and default."""
    if spec.type is InputType.enum:
        schema: dict[str, Any] = {"enum": list(spec.values or [])}
    else:
        schema = dict(_TYPES[spec.type])
    if spec.type is InputType.list and spec.items is not None and spec.items is not InputType.enum:
        schema["items"] = dict(_TYPES[spec.items])
    if spec.description:
        schema["description"] = spec.description
    if spec.default is not None:
        schema["default"] = spec.default
    return schema


def inputs_schema(flow: Flow) -> dict[str, Any]:
    """``{"type": "object", "properties": {...}, "required": [...]}`` of the flow's inputs."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {spec.id: input_schema(spec) for spec in flow.inputs},
        "additionalProperties": False,
    }
    required = [spec.id for spec in flow.inputs if spec.required and spec.default is None]
    if required:
        schema["required"] = required
    return schema
