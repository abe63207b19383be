"""Checking an LLM reply before anything downstream sees it.

A reply goes through, in order: JSON parsing (code fences and prose around one object are
tolerated), the output schema (JSON Schema, or a pydantic model given as ``module:Class``),
declarative rules (``{field: category, one_of: [...]}``) and an optional python validator.
Every problem is a plain sentence, because the sentences are sent back to the model when it is
asked to repair its answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError

from hub.core.imports import import_object
from hub.prompts.rules import Rule

_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n(?P<body>.*?)\n?```\s*$", re.DOTALL)


def extract_json(text: str) -> Any:
    """The JSON value in a reply; raises ``ValueError`` with a sentence saying what is wrong."""
    stripped = text.strip()
    fence = _FENCE.match(stripped)
    if fence:
        stripped = fence.group("body").strip()
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as first:
        # a model that wraps one object in prose: take the outermost {...}
        start, end = stripped.find("{"), stripped.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(stripped[start : end + 1])
            except json.JSONDecodeError:
                pass
        raise ValueError(f"the reply is not valid JSON ({first.msg} at line {first.lineno} column {first.colno})") from None


@dataclass
class OutputCheck:
    """A compiled output contract: call :meth:`check` on a reply's text."""

    schema: dict[str, Any] | None = None
    model: type[BaseModel] | None = None
    rules: list[Rule] = field(default_factory=list)
    validator: Callable[[Any], Any] | None = None

    @classmethod
    def build(
        cls,
        schema: dict[str, Any] | None = None,
        model: str | None = None,
        rules: list[Rule] | None = None,
        validator: str | None = None,
    ) -> OutputCheck:
        model_cls = None
        if model:
            model_cls = import_object(model)
            if not (isinstance(model_cls, type) and issubclass(model_cls, BaseModel)):
                raise ValueError(f"{model!r} is not a pydantic model class")
        fn = import_object(validator) if validator else None
        if fn is not None and not callable(fn):
            raise ValueError(f"{validator!r} is not callable")
        if schema is not None:
            _validator_for(json.dumps(schema, sort_keys=True))  # a broken schema fails here, not per reply
        return cls(schema=schema, model=model_cls, rules=list(rules or []), validator=fn)

    @property
    def is_json(self) -> bool:
        return self.schema is not None or self.model is not None or bool(self.rules)

    def json_schema(self) -> dict[str, Any] | None:
        if self.model is not None:
            return self.model.model_json_schema()
        return self.schema

    def check(self, text: str) -> tuple[Any, list[str]]:
        """``(value, errors)``; ``errors`` is empty when the reply is acceptable."""
        if not self.is_json:
            value: Any = text
        else:
            try:
                value = extract_json(text)
            except ValueError as exc:
                return None, [str(exc)]
        errors: list[str] = []
        if self.schema is not None:
            errors += schema_errors(self.schema, value)
        if self.model is not None:
            try:
                value = self.model.model_validate(value).model_dump(mode="json")
            except ValidationError as exc:
                errors += [f"{'.'.join(str(p) for p in e['loc']) or 'the reply'}: {e['msg']}" for e in exc.errors()]
        if errors:
            return value, errors
        for rule in self.rules:
            errors += rule.check(value)
        if not errors and self.validator is not None:
            errors += _run_validator(self.validator, value)
        return value, errors


def _run_validator(fn: Callable[[Any], Any], value: Any) -> list[str]:
    """A python validator returns None/True (fine), False, a message, or a list of messages;
    raising ``ValueError`` also reports a problem."""
    try:
        result = fn(value)
    except ValueError as exc:
        return [str(exc)]
    if result is None or result is True:
        return []
    if result is False:
        return [f"the reply was rejected by {getattr(fn, '__name__', 'the validator')}"]
    if isinstance(result, str):
        return [result]
    return [str(r) for r in result]


async def warm() -> None:
    """jsonschema's first import, off the event loop (a caller about to check many replies
    concurrently does this first, so that the import does not stall the calls in flight)."""
    from hub.llm.slow_imports import imported

    await imported("jsonschema")


@lru_cache(maxsize=256)
def _validator_for(schema_json: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(schema: dict[str, Any], value: Any) -> list[str]:
    validator = _validator_for(json.dumps(schema, sort_keys=True))
    out = []
    for err in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in err.absolute_path)
        out.append(f"{where}: {err.message}" if where else err.message)
    return out


def schema_instructions(schema: dict[str, Any]) -> str:
    return (
        "Answer with a single JSON object and nothing else (no prose, no code fences). "
        "It must match this JSON Schema:\n" + json.dumps(schema, indent=2)
    )


def repair_message(errors: list[str]) -> str:
    listed = "\n".join(f"- {e}" for e in errors)
    return (
        "Your previous answer was not accepted:\n"
        f"{listed}\n"
        "Answer again with the corrected JSON object only."
    )
