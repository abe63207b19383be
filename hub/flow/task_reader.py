"""Tasks of a flow file -> :class:`~hub.flow.models.Task`: the keys every task takes, then the
parameters of its type (validated by the type's ``Params`` model, with templates left for run
time), then the tasks nested in it."""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from hub.flow.durations import parse_duration
from hub.flow.expressions import is_template
from hub.flow.models import ID_PATTERN, RetryPolicy, Task
from hub.flow.problems import COMMON_KEYS, Collector, suggest
from hub.tasks.registry import Registry

_ID = re.compile(ID_PATTERN)


class TaskReader:
    """Reads the task lists of one flow file; ``ids`` gathers every task id seen (they are unique
    in a flow)."""

    def __init__(self, registry: Registry, out: Collector):
        self.registry = registry
        self.out = out
        self.ids: dict[str, tuple[str | int, ...]] = {}

    def tasks(self, raw: Any, path: tuple[str | int, ...]) -> list[Task]:
        """The tasks of the list ``raw`` at ``path`` that validate (the others are problems)."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.out.add(path, "must be a list of tasks")
            return []
        return [t for i, item in enumerate(raw) if (t := self.task(item, (*path, i))) is not None]

    def task(self, raw: Any, path: tuple[str | int, ...]) -> Task | None:
        if not isinstance(raw, dict):
            self.out.add(path, "a task must be a mapping with 'id' and 'type'")
            return None
        task_id = self._id(raw, path)
        kind = self._kind(raw, path)
        common, ok = self._common(raw, path)
        params: dict[str, Any] | None = {}
        if kind is not None:
            params = self._params(kind, {k: v for k, v in raw.items() if k not in COMMON_KEYS}, path)
        if task_id is None or kind is None or params is None or not ok:
            return None
        line, _ = self.out.positions.of(path)
        return Task(
            id=task_id, type=raw["type"], description=raw.get("description"), params=params, line=line, path=path,
            **common,
        )

    def _id(self, raw: dict[str, Any], path: tuple[str | int, ...]) -> str | None:
        """The task's id, when it is valid and new in this flow."""
        out = self.out
        task_id = raw.get("id")
        if task_id is None:
            out.add(path, "missing required key 'id'", key=True)
        elif not isinstance(task_id, str) or not _ID.match(task_id):
            out.add((*path, "id"), f"{task_id!r} is not a valid task id (letters, digits and _; not starting with a digit)")
        elif task_id in self.ids:
            line, _ = out.positions.of(self.ids[task_id])
            out.add((*path, "id"), f"task id {task_id!r} is already used (line {line}); task ids must be unique in a flow")
        else:
            self.ids[task_id] = (*path, "id")
            return task_id
        return None

    def _kind(self, raw: dict[str, Any], path: tuple[str | int, ...]) -> Any:
        """The task kind its ``type`` names, or None (a problem)."""
        type_name = raw.get("type")
        if type_name is None:
            self.out.add(path, "missing required key 'type'", key=True)
        elif not isinstance(type_name, str) or type_name not in self.registry:
            self.out.add((*path, "type"), f"unknown task type {type_name!r}{suggest(str(type_name), self.registry.types())}")
        else:
            return self.registry.get(type_name)
        return None

    def _common(self, raw: dict[str, Any], path: tuple[str | int, ...]) -> tuple[dict[str, Any], bool]:
        """The keys every task takes (``if``, ``retry``, ``timeout``, ``allow_failure``), as Task
        fields, and whether they are all valid."""
        out = self.out
        common: dict[str, Any] = {}
        ok = True
        if "description" in raw and raw["description"] is not None and not isinstance(raw["description"], str):
            out.add((*path, "description"), "must be a string")
        if "if" in raw:
            if not isinstance(raw["if"], str | bool):
                out.add((*path, "if"), "must be an expression or a boolean")
                ok = False
            common["if_"] = raw["if"]
        if raw.get("retry") is not None:
            try:
                common["retry"] = RetryPolicy.model_validate(raw["retry"])
            except ValidationError as exc:
                out.from_validation(exc, (*path, "retry"), RetryPolicy)
                ok = False
        if raw.get("timeout") is not None:
            try:
                common["timeout"] = parse_duration(raw["timeout"])
            except ValueError as exc:
                out.add((*path, "timeout"), str(exc))
                ok = False
        if "allow_failure" in raw:
            if not isinstance(raw["allow_failure"], bool):
                out.add((*path, "allow_failure"), "must be true or false")
                ok = False
            else:
                common["allow_failure"] = raw["allow_failure"]
        return common, ok

    def _params(self, kind: Any, raw: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any] | None:
        """The parameters of a task of ``kind``, or None when any is wrong (each a problem)."""
        out = self.out
        model: type[BaseModel] = kind.Params
        nested: dict[str, str] = getattr(kind, "nested", {})
        before = len(out.items)
        self._validate(model, nested, raw, path)
        params: dict[str, Any] = {}
        names = _param_names(model)
        for key, value in raw.items():
            if key in nested:
                if nested[key] == "map":
                    if not isinstance(value, dict):
                        out.add((*path, key), "must be a mapping of name -> list of tasks")
                        continue
                    params[key] = {str(name): self.tasks(tasks, (*path, key, name)) for name, tasks in value.items()}
                else:
                    params[key] = self.tasks(value, (*path, key))
            elif key in names:
                params[key] = value
        check = getattr(kind, "check", None)
        if check is not None and len(out.items) == before:
            # a kind's own static checks (e.g. llm.chat: does the prompt exist?)
            for suffix, message in check(params) or []:
                out.add((*path, *suffix), message)
        if len(out.items) > before:
            return None
        return params

    def _validate(
        self, model: type[BaseModel], nested: dict[str, str], raw: dict[str, Any], path: tuple[str | int, ...]
    ) -> None:
        """``raw`` checked by ``model`` with its templates and nested task lists left out (a
        template's type is known only once rendered; nested tasks are read on their own)."""
        names = _param_names(model)
        probe: dict[str, Any] = {}
        templated: set[str] = set()
        for key, value in raw.items():
            if key in nested:
                probe[key] = {} if nested[key] == "map" else []
                if nested[key] == "map" and isinstance(value, dict):
                    probe[key] = {k: [] for k in value}
                elif nested[key] == "list" and isinstance(value, list) and value:
                    probe[key] = [None] * len(value)
            elif is_template(value) and key in names:
                templated.add(_field_name(model, key))
            else:
                probe[key] = value
        try:
            model.model_validate(probe)
        except ValidationError as exc:
            errors = [
                e for e in exc.errors()
                if not (e["type"] == "missing" and e["loc"] and _field_alias(model, e["loc"][0]) in raw)
                and not (e["loc"] and str(e["loc"][0]) in nested and e["type"] not in ("too_short", "missing"))
                and not (e["loc"] and _field_name(model, str(e["loc"][0])) in templated)
                # a check across fields (exactly one of a, b) cannot be judged while one is a template
                and not (not e["loc"] and templated)
                and not _at_template(raw, _field_alias_path(model, e["loc"]))
            ]
            # a misspelt key is one mistake, not two: no 'missing' error for the key it resembles
            typos = {
                m[0]
                for e in errors if e["type"] == "extra_forbidden" and e["loc"]
                for m in [difflib.get_close_matches(str(e["loc"][0]), names, n=1, cutoff=0.6)] if m
            }
            errors = [
                e for e in errors
                if not (e["type"] == "missing" and e["loc"] and _field_alias(model, e["loc"][0]) in typos)
            ]
            if errors:
                self.out.task_params = True
                try:
                    self.out.from_validation(ValidationError.from_exception_data(exc.title, errors), path, model)  # type: ignore[arg-type]
                finally:
                    self.out.task_params = False


def _param_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _field_alias_path(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Any, ...]:
    return (_field_alias(model, loc[0]), *loc[1:]) if loc else loc


def _at_template(raw: Any, loc: tuple[Any, ...]) -> bool:
    """Does an error location point at (or into) a template string inside ``raw``?

    Location parts that are not keys or indexes of the data (pydantic's union member tags such as
    ``list[str]``) are skipped over.
    """
    node = raw
    for part in loc:
        if isinstance(node, str):
            break
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
    if isinstance(node, str):
        return is_template(node)
    # a field-level check on a list or map with templates inside can only be judged once rendered
    return bool(loc) and node is not raw and contains_template(node)


def contains_template(value: Any) -> bool:
    """A template anywhere in ``value`` (its type is known only after rendering)."""
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, dict):
        return any(contains_template(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_template(v) for v in value)
    return False


def _field_name(model: type[BaseModel], key: str) -> str:
    for name, field in model.model_fields.items():
        if field.alias == key or name == key:
            return name
    return key


def _field_alias(model: type[BaseModel], key: Any) -> str:
    field = model.model_fields.get(str(key))
    return (field.alias or str(key)) if field else str(key)


