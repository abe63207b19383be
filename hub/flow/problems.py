"""The problems of one flow file, each with its file, line, column and key path, and the
translation of pydantic's validation errors into messages that say how to fix them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from hub.errors import Location
from hub.flow import yamlpos

COMMON_KEYS = ("id", "type", "description", "if", "retry", "timeout", "allow_failure")
"""Keys every task takes, whatever its type."""


def suggest(name: str, candidates: Iterable[str]) -> str:
    """`` did you mean 'x'?`` when a close candidate exists, else an empty string."""
    found = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {found[0]!r}?" if found else ""


class Collector:
    """Problems found so far, placed with the positions of the parsed text."""

    def __init__(self, file: str | None, positions: yamlpos.Positions):
        self.file = file
        self.positions = positions
        self.items: list[Location] = []
        self.task_params = False

    def add(self, path: tuple[str | int, ...], message: str, key: bool = False) -> None:
        line, column = self.positions.of(path, key=key)
        self.items.append(Location(tuple(path), message, self.file, line, column))

    def from_validation(
        self, exc: ValidationError, prefix: tuple[str | int, ...], model: type[BaseModel] | None = None,
    ) -> None:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            loc = _strip_union_tags(loc)
            kind = err["type"]
            path = (*prefix, *loc)
            if kind == "extra_forbidden":
                name = str(loc[-1])
                fields = _fields_at(model, loc[:-1]) if model else []
                if self.task_params and len(loc) == 1:
                    fields = [*fields, *COMMON_KEYS]
                self.add(path, f"unknown key {name!r}{suggest(name, fields)}", key=True)
            elif kind == "missing":
                parent = path[:-1]
                self.add(parent, f"missing required key {loc[-1]!r}", key=True)
            elif kind in ("union_tag_invalid", "union_tag_not_found"):
                ctx = err.get("ctx") or {}
                expected = ctx.get("expected_tags", "")
                tag = ctx.get("tag", "")
                self.add((*path, "type"), f"unknown type {tag!r}; expected one of {expected}"
                         + suggest(tag, [t.strip(" '") for t in str(expected).split(",")]))
            else:
                msg = err["msg"]
                if msg.startswith("Value error, "):
                    msg = msg[len("Value error, "):]
                self.add(path, msg[0].lower() + msg[1:] if msg else msg)


def _strip_union_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    tags = {"schedule", "webhook", "redis_stream", "file", "flow"}
    out = []
    for i, part in enumerate(loc):
        if isinstance(part, str) and part in tags and i > 0 and isinstance(loc[i - 1], int):
            continue
        out.append(part)
    return tuple(out)


def _fields_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            field = next((f for f in current.model_fields.values() if f.alias == part), None)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if current is None or not hasattr(current, "model_fields"):
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def by_position(items: list[Location]) -> list[Location]:
    return sorted(items, key=lambda loc: (loc.line or 0, loc.column or 0))


