"""Typed form fields of an approval and the check of submitted values.

Fields: ``string`` (one line), ``text`` (several lines), ``number``, ``bool``, ``enum`` (one of
``options``) and ``json``. Defaults come from the flow's expressions (an LLM draft, a computed
amount); the approver may edit them before approving. Values from an HTML form arrive as text
(``from_text=True``) and are converted; values from the API must already have their JSON type.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import Field, model_validator

from hub.tasks.base import Params

FieldType = Literal["string", "text", "number", "bool", "enum", "json"]


class FormField(Params):
    type: FieldType = Field("string", description="string, text, number, bool, enum or json.")
    label: str | None = Field(None, description="Shown instead of the field name.")
    help: str | None = Field(None, description="A line of help under the field.")
    default: Any = Field(None, description="Initial value, often an expression (the LLM draft).")
    required: bool = Field(False, description="An approval must give a value (not empty).")
    options: list[str] | None = Field(None, description="The choices of an enum.")
    min: float | None = Field(None, description="Smallest number accepted.")
    max: float | None = Field(None, description="Largest number accepted.")
    max_length: int | None = Field(None, ge=1, description="Longest string or text accepted.")

    @model_validator(mode="after")
    def _options(self) -> FormField:
        if self.type == "enum" and not self.options:
            raise ValueError("an enum field needs options: [a, b, ...]")
        if self.type != "enum" and self.options is not None:
            raise ValueError("options belong to enum fields")
        return self


class FormInvalid(Exception):
    """Submitted values that do not fit the form; ``problems`` maps field → message."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


def defaults(form: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each field's default value (what the request shows before anyone edits it)."""
    return {name: spec.get("default") for name, spec in form.items()}


def validate(
    form: dict[str, dict[str, Any]], submitted: dict[str, Any] | None, *, from_text: bool = False,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The complete, typed values: submitted ones checked, missing ones from ``base`` (the gate's
    current values) or else the defaults."""
    submitted = dict(submitted or {})
    base = base or {}
    unknown = sorted(set(submitted) - set(form))
    problems: dict[str, str] = {name: "not a field of this form" for name in unknown}
    values: dict[str, Any] = {}
    for name, raw_spec in form.items():
        spec = FormField.model_validate(raw_spec)
        if name in submitted:
            try:
                value = _convert(spec, submitted[name], from_text)
            except ValueError as exc:
                problems[name] = str(exc)
                continue
        else:
            value = False if (from_text and spec.type == "bool") else base.get(name, spec.default)
        problem = _check(spec, value)
        if problem:
            problems[name] = problem
            continue
        values[name] = value
    if problems:
        raise FormInvalid(problems)
    return values


def _convert(spec: FormField, value: Any, from_text: bool) -> Any:
    if spec.type in ("string", "text", "enum"):
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {type(value).__name__}")
        return value.replace("\r\n", "\n") if spec.type == "text" else value
    if spec.type == "number":
        if value is None or (from_text and value == ""):
            return None
        if isinstance(value, str) and from_text:
            try:
                value = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"must be a number, got {value!r}")
        return value
    if spec.type == "bool":
        if from_text and isinstance(value, str):
            if value.lower() in ("true", "on", "1", "yes"):
                return True
            if value.lower() in ("false", "off", "0", "no", ""):
                return False
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value
    # json
    if from_text and isinstance(value, str):
        if value.strip() == "":
            return None
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"is not valid JSON: {exc}") from None
    return value


def _check(spec: FormField, value: Any) -> str | None:
    empty = value is None or value == ""
    if empty:
        return "a value is required" if spec.required else None
    if spec.type == "enum" and value not in (spec.options or []):
        return f"must be one of {', '.join(spec.options or [])}"
    if spec.type in ("string", "text") and spec.max_length and len(value) > spec.max_length:
        return f"is longer than {spec.max_length} characters"
    if spec.type == "string" and "\n" in value:
        return "must be one line (use type: text for several)"
    if spec.type == "number":
        if spec.min is not None and value < spec.min:
            return f"must be at least {spec.min:g}"
        if spec.max is not None and value > spec.max:
            return f"must be at most {spec.max:g}"
    return None
