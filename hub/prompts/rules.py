"""The declarative checks a prompt's output spec lists (``rules:``), each on one field of the reply.

They belong to the prompt file (:mod:`hub.prompts.spec`); the model client runs them on every
answer (:class:`hub.llm.validation.OutputCheck`) and evals read fields the same way (:func:`dig`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Rule(BaseModel):
    """A declarative check on one field of a JSON reply (``a.b`` reaches into objects)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: str
    one_of: list[Any] | None = Field(None, description="The value must be one of these.")
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    pattern: str | None = Field(
        None,
        description="A regular expression found anywhere in the value (as JSON Schema's 'pattern' and the "
        "eval 'regex'); anchor it with ^...$ to match the whole value.",
    )
    required: bool = Field(True, description="A missing field is an error.")

    @model_validator(mode="after")
    def _something_to_check(self) -> Rule:
        if self.pattern is not None:
            re.compile(self.pattern)
        return self

    def check(self, value: Any) -> list[str]:
        found, current = dig(value, self.field)
        if not found:
            return [f"field {self.field!r} is missing"] if self.required else []
        errors = []
        if self.one_of is not None and current not in self.one_of:
            allowed = ", ".join(json.dumps(v) for v in self.one_of)
            errors.append(f"field {self.field!r} is {json.dumps(current)}; it must be one of {allowed}")
        if self.min is not None or self.max is not None:
            if not isinstance(current, int | float) or isinstance(current, bool):
                errors.append(f"field {self.field!r} must be a number")
            else:
                if self.min is not None and current < self.min:
                    errors.append(f"field {self.field!r} is {current}; it must be at least {self.min}")
                if self.max is not None and current > self.max:
                    errors.append(f"field {self.field!r} is {current}; it must be at most {self.max}")
        if self.max_length is not None and hasattr(current, "__len__") and len(current) > self.max_length:
            errors.append(f"field {self.field!r} is {len(current)} long; it must be at most {self.max_length}")
        if self.pattern is not None and not (isinstance(current, str) and re.search(self.pattern, current)):
            errors.append(f"field {self.field!r} must match the pattern {self.pattern!r}")
        return errors


def dig(value: Any, dotted: str) -> tuple[bool, Any]:
    """``(found, value)`` of ``a.b.0`` inside dicts and lists (``-1`` counts from the end)."""
    current = value
    for part in dotted.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current
