"""Checking and converting execution inputs against a flow's declared inputs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hub.errors import InputError
from hub.flow.models import Flow, InputSpec, InputType


def _convert(spec_type: InputType, value: Any, spec: InputSpec) -> Any:
    if spec_type is InputType.string:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ValueError("expected a string")
    if spec_type is InputType.int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise ValueError("expected an integer") from None
        raise ValueError("expected an integer")
    if spec_type is InputType.float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise ValueError("expected a number") from None
        raise ValueError("expected a number")
    if spec_type is InputType.bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.strip().lower() in ("true", "yes", "1", "on")
        raise ValueError("expected true or false")
    if spec_type is InputType.json:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError(f"not valid JSON: {exc}") from None
        return value
    if spec_type is InputType.datetime:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).isoformat()
            except ValueError:
                raise ValueError("expected an ISO 8601 date-time such as 2026-01-31T09:00:00Z") from None
        raise ValueError("expected an ISO 8601 date-time")
    if spec_type is InputType.enum:
        values = spec.values or []
        if value in values:
            return value
        as_text = {str(v): v for v in values}
        if str(value) in as_text:
            return as_text[str(value)]
        raise ValueError(f"must be one of {', '.join(map(str, values))}")
    if spec_type is InputType.list:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ValueError("expected a list")
        if spec.items is not None:
            item_spec = InputSpec(id=spec.id, type=spec.items)
            return [_convert(spec.items, v, item_spec) for v in value]
        return value
    raise ValueError(f"unknown type {spec_type}")


def check_inputs(flow: Flow, given: dict[str, Any]) -> dict[str, Any]:
    """Declared inputs, converted to their types, defaults filled; every problem at once."""
    problems: list[str] = []
    declared = {spec.id: spec for spec in flow.inputs}
    for name in given:
        if name not in declared:
            known = ", ".join(declared) or "none"
            problems.append(f"{name!r} is not an input of {flow.key} (inputs: {known})")
    result: dict[str, Any] = {}
    for spec in flow.inputs:
        if spec.id in given and given[spec.id] is not None:
            try:
                result[spec.id] = _convert(spec.type, given[spec.id], spec)
            except (ValueError, TypeError) as exc:
                problems.append(f"{spec.id}: {exc} (type {spec.type.value}, got {given[spec.id]!r})")
        elif spec.default is not None:
            result[spec.id] = spec.default
        elif spec.required:
            problems.append(f"{spec.id}: required input is missing")
        else:
            result[spec.id] = None
    if problems:
        raise InputError(problems)
    return result


def parse_cli_inputs(pairs: list[str], json_text: str | None) -> dict[str, Any]:
    """``--input k=v`` pairs and ``--inputs-json`` merged (pairs win)."""
    values: dict[str, Any] = {}
    if json_text:
        try:
            loaded = json.loads(json_text)
        except ValueError as exc:
            raise InputError([f"--inputs-json is not valid JSON: {exc}"]) from None
        if not isinstance(loaded, dict):
            raise InputError(["--inputs-json must be a JSON object"])
        values.update(loaded)
    for pair in pairs:
        if "=" not in pair:
            raise InputError([f"--input {pair!r}: write NAME=VALUE"])
        key, value = pair.split("=", 1)
        values[key.strip()] = value
    return values
