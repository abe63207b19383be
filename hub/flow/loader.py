"""YAML text -> :class:`~hub.flow.models.Flow`, with every mistake reported at once.

Each problem is a :class:`~hub.errors.Location` with file, line, column, the key path and a
message that says how to fix it ("unknown key 'retires'; did you mean 'retry'?").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError
from pydantic import BaseModel, ValidationError

from hub.core.plugins import PluginError
from hub.core.registry import trigger_registry
from hub.errors import FlowError, Location
from hub.flow import yamlpos
from hub.flow.durations import parse_duration
from hub.flow.expressions import expressions, is_template
from hub.flow.models import ID_PATTERN, Flow, FlowHeader, RetryPolicy, Task, walk_tasks
from hub.tasks.registry import Registry, default_registry

COMMON_KEYS = ("id", "type", "description", "if", "retry", "timeout", "allow_failure")
_ID = re.compile(ID_PATTERN)
BASE_ROOTS = {"inputs", "vars", "outputs", "execution", "trigger", "secret", "now", "range"}


def suggest(name: str, candidates: Iterable[str]) -> str:
    """`` did you mean 'x'?`` when a close candidate exists, else an empty string."""
    found = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {found[0]!r}?" if found else ""


class _Collector:
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


def _param_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


class FlowLoader:
    def __init__(self, registry: Registry | None = None, triggers: Registry | None = None):
        self.registry = registry or default_registry()
        self.triggers = triggers or trigger_registry(self.registry.plugins)

    # -- entry points ------------------------------------------------------------------------------

    def load_file(self, path: str | Path) -> Flow:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FlowError([Location((), f"cannot read file: {exc.strerror}", str(path))], str(path)) from None
        except UnicodeDecodeError as exc:
            problem = f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
            raise FlowError([Location((), problem, str(path))], str(path)) from None
        return self.load_text(text, str(path))

    def load_text(self, text: str, file: str | None = None) -> Flow:
        try:
            data, positions = yamlpos.load(text)
        except yamlpos.YamlSyntaxError as exc:
            raise FlowError([Location((), str(exc), file, exc.line, exc.column)], file) from None
        out = _Collector(file, positions)
        if not isinstance(data, dict):
            out.add((), "a flow file must be a YAML mapping with at least 'id' and 'tasks'")
            raise FlowError(out.items, file)
        try:
            header = FlowHeader.model_validate(data)
        except ValidationError as exc:
            out.from_validation(exc, (), FlowHeader)
            header = None
        triggers = self._triggers(data.get("triggers"), out)
        ids: dict[str, tuple[str | int, ...]] = {}
        tasks = self._tasks(data.get("tasks"), ("tasks",), out, ids)
        errors = self._tasks(data.get("errors"), ("errors",), out, ids)
        final = self._tasks(data.get("finally"), ("finally",), out, ids)
        if header is None or out.items:
            # reference checks need a sound tree; report what we have
            if header is not None or tasks:
                self._check_references(data, header, tasks, errors, final, out, set(ids))
            raise FlowError(_sorted(out.items), file)
        _check_self_calls(header, [*tasks, *errors, *final], out)
        if out.items:
            raise FlowError(_sorted(out.items), file)
        flow = Flow(
            id=header.id,
            namespace=header.namespace,
            description=header.description,
            labels=header.labels,
            inputs=header.inputs,
            variables=header.variables,
            tasks=tasks,
            errors=errors,
            finally_=final,
            outputs=header.outputs,
            retry=header.retry,
            timeout=header.timeout,
            concurrency=header.concurrency,
            triggers=triggers,
            disabled=header.disabled,
            max_cost=header.max_cost,
            source=text,
            file=file,
        )
        self._check_references(data, header, tasks, errors, final, out, set(ids))
        if out.items:
            raise FlowError(_sorted(out.items), file)
        return flow

    # -- triggers ------------------------------------------------------------------------------------

    def _triggers(self, raw: Any, out: _Collector) -> list[Any]:
        """Each trigger validated by the ``Config`` of its type (declared by a plugin)."""
        if not isinstance(raw, list):
            return []  # the header's model reports a wrong shape
        found: list[Any] = []
        seen: set[str] = set()
        for i, item in enumerate(raw):
            path: tuple[str | int, ...] = ("triggers", i)
            if not isinstance(item, dict):
                out.add(path, "a trigger must be a mapping with 'id' and 'type'")
                continue
            type_name = item.get("type")
            if type_name is None:
                out.add(path, "missing required key 'type'", key=True)
                continue
            try:
                kind = self.triggers.get(type_name) if isinstance(type_name, str) else None
            except PluginError as exc:
                out.add((*path, "type"), f"trigger type {type_name!r} cannot be used: {exc}")
                continue
            if kind is None:
                out.add((*path, "type"), f"unknown trigger type {type_name!r}; expected one of "
                        f"{', '.join(self.triggers.types())}{suggest(str(type_name), self.triggers.types())}")
                continue
            try:
                trigger = kind.Config.model_validate(item)
            except ValidationError as exc:
                out.from_validation(exc, path, kind.Config)
                continue
            if trigger.id in seen:
                out.add((*path, "id"), f"trigger id {trigger.id!r} is used twice in this flow")
            seen.add(trigger.id)
            found.append(trigger)
        return found

    # -- tasks ---------------------------------------------------------------------------------------

    def _tasks(self, raw: Any, path: tuple[str | int, ...], out: _Collector, ids: dict[str, Any]) -> list[Task]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            out.add(path, "must be a list of tasks")
            return []
        return [t for i, item in enumerate(raw) if (t := self._task(item, (*path, i), out, ids)) is not None]

    def _task(self, raw: Any, path: tuple[str | int, ...], out: _Collector, ids: dict[str, Any]) -> Task | None:
        if not isinstance(raw, dict):
            out.add(path, "a task must be a mapping with 'id' and 'type'")
            return None
        ok = True
        task_id = raw.get("id")
        if task_id is None:
            out.add(path, "missing required key 'id'", key=True)
            ok = False
        elif not isinstance(task_id, str) or not _ID.match(task_id):
            out.add((*path, "id"), f"{task_id!r} is not a valid task id (letters, digits and _; not starting with a digit)")
            ok = False
        elif task_id in ids:
            first = ids[task_id]
            line, _ = out.positions.of(first)
            out.add((*path, "id"), f"task id {task_id!r} is already used (line {line}); task ids must be unique in a flow")
            ok = False
        else:
            ids[task_id] = (*path, "id")
        type_name = raw.get("type")
        kind = None
        if type_name is None:
            out.add(path, "missing required key 'type'", key=True)
            ok = False
        elif not isinstance(type_name, str) or type_name not in self.registry:
            out.add((*path, "type"), f"unknown task type {type_name!r}{suggest(str(type_name), self.registry.types())}")
            ok = False
        else:
            kind = self.registry.get(type_name)
        common: dict[str, Any] = {}
        if "description" in raw and raw["description"] is not None and not isinstance(raw["description"], str):
            out.add((*path, "description"), "must be a string")
        if "if" in raw:
            cond = raw["if"]
            if not isinstance(cond, str | bool):
                out.add((*path, "if"), "must be an expression or a boolean")
                ok = False
            common["if_"] = cond
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
        params_raw = {k: v for k, v in raw.items() if k not in COMMON_KEYS}
        params: dict[str, Any] | None = {}
        if kind is not None:
            params = self._params(kind, params_raw, path, out, ids)
            if params is None:
                ok = False
        if not ok:
            return None
        line, _ = out.positions.of(path)
        return Task(
            id=task_id,
            type=type_name,
            description=raw.get("description"),
            params=params,
            line=line,
            path=path,
            **common,
        )

    def _params(
        self, kind: Any, raw: dict[str, Any], path: tuple[str | int, ...], out: _Collector, ids: dict[str, Any]
    ) -> dict[str, Any] | None:
        model: type[BaseModel] = kind.Params
        nested: dict[str, str] = getattr(kind, "nested", {})
        names = _param_names(model)
        before = len(out.items)
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
                out.task_params = True
                try:
                    out.from_validation(ValidationError.from_exception_data(exc.title, errors), path, model)  # type: ignore[arg-type]
                finally:
                    out.task_params = False
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if key in nested:
                if nested[key] == "map":
                    if not isinstance(value, dict):
                        out.add((*path, key), "must be a mapping of name -> list of tasks")
                        continue
                    params[key] = {
                        str(name): self._tasks(tasks, (*path, key, name), out, ids) for name, tasks in value.items()
                    }
                else:
                    params[key] = self._tasks(value, (*path, key), out, ids)
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

    # -- references ----------------------------------------------------------------------------------

    def _check_references(
        self,
        data: dict[str, Any],
        header: FlowHeader | None,
        tasks: list[Task],
        errors: list[Task],
        final: list[Task],
        out: _Collector,
        declared: set[str] | None = None,
    ) -> None:
        input_ids: set[str] = (
            {i.id for i in header.inputs} if header
            else {str(i.get("id")) for i in data.get("inputs") or [] if isinstance(i, dict)}
        )
        var_ids = set(header.variables) if header else set(data.get("variables") or {})
        all_ids = {t.id for t in walk_tasks([*tasks, *errors, *final])}
        env_globals = set(expressions().env.globals)
        checker = _RefChecker(out, input_ids, var_ids, all_ids, env_globals, (declared or set()) - all_ids)

        for key, value in (data.get("variables") or {}).items():
            checker.check(value, ("variables", key), visible=set(), roots={"inputs", "execution", "trigger", "secret", "now", "range"})
        for i, trig in enumerate(data.get("triggers") or []):
            if isinstance(trig, dict):
                checker.check(trig.get("inputs") or {}, ("triggers", i, "inputs"), visible=set(),
                              roots={"trigger", "execution", "secret", "now", "range", "vars"})
                for key in ("path", "secret", "signing_secret"):  # rendered with secret() and now() only
                    if isinstance(trig.get(key), str):
                        checker.check(trig[key], ("triggers", i, key), visible=set(), roots={"secret", "now", "range"})
        main_ids = self._walk_refs(tasks, set(), BASE_ROOTS, checker)
        handler_roots = BASE_ROOTS | {"error"}
        self._walk_refs(errors, set(main_ids), handler_roots, checker)
        self._walk_refs(final, set(all_ids), handler_roots, checker)
        checker.check(data.get("outputs") or {}, ("outputs",), visible=all_ids, roots=BASE_ROOTS)

    def _walk_refs(
        self,
        tasks: list[Task],
        visible: set[str],
        roots: set[str],
        checker: _RefChecker,
        sequential: bool = True,
    ) -> set[str]:
        """Check each task's templates against what is upstream of it; return the ids it adds."""
        added: set[str] = set()
        for task in tasks:
            tpath = task.path
            seen = visible | added if sequential else set(visible)
            if task.if_ is not None and isinstance(task.if_, str):
                checker.check(task.if_, (*tpath, "if"), seen, roots, self_id=task.id, condition=True)
            kind = self.registry.get(task.type)
            nested = getattr(kind, "nested", {})
            for key, value in task.params.items():
                if key in nested:
                    continue
                checker.check(value, (*tpath, key), seen, roots, self_id=task.id,
                              condition=(task.type == "if" and key == "condition"))
            inner_roots = roots | ({"item", "index"} if task.type == "for_each" else set())
            child_seq = getattr(kind, "sequential_children", True)
            for key, value in task.params.items():
                if key not in nested:
                    continue
                if nested[key] == "map":
                    for kids in value.values():
                        added |= self._walk_refs(kids, seen, inner_roots, checker, child_seq)
                else:
                    added |= self._walk_refs(value, seen, inner_roots, checker, child_seq)
            added.add(task.id)
        return added


def _check_self_calls(header: FlowHeader, tasks: list[Task], out: _Collector) -> None:
    """A subflow step that starts its own flow unconditionally recurses until the depth limit."""
    for task in walk_tasks(tasks):
        ref = task.params.get("flow")
        if task.type != "subflow" or task.if_ is not None or not isinstance(ref, str) or is_template(ref):
            continue
        namespace, _, flow_id = ref.rpartition(".")
        if (namespace or header.namespace, flow_id) == (header.namespace, header.id):
            out.add((*task.path, "flow"), f"the flow {header.namespace}.{header.id} starts itself here, "
                    "which would nest subflows until HUB_SUBFLOW_MAX_DEPTH fails it; give the step an "
                    "'if' that ends the recursion, or start another flow")


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


def _sorted(items: list[Location]) -> list[Location]:
    return sorted(items, key=lambda loc: (loc.line or 0, loc.column or 0))


def _field_name(model: type[BaseModel], key: str) -> str:
    for name, field in model.model_fields.items():
        if field.alias == key or name == key:
            return name
    return key


def _field_alias(model: type[BaseModel], key: Any) -> str:
    field = model.model_fields.get(str(key))
    return (field.alias or str(key)) if field else str(key)


class _RefChecker:
    def __init__(
        self, out: _Collector, inputs: set[str], variables: set[str], all_ids: set[str], env_globals: set[str],
        broken: set[str],
    ):
        self.broken = broken  # ids of tasks that failed to validate: no second error about them
        self.out = out
        self.inputs = inputs
        self.variables = variables
        self.all_ids = all_ids
        self.env_globals = env_globals

    def check(
        self, value: Any, path: tuple[str | int, ...], visible: set[str], roots: set[str],
        self_id: str | None = None, condition: bool = False,
    ) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self.check(v, (*path, k), visible, roots, self_id)
            return
        if isinstance(value, list):
            for i, v in enumerate(value):
                self.check(v, (*path, i), visible, roots, self_id)
            return
        if not isinstance(value, str):
            return
        if not is_template(value):
            if not condition:
                return
            value = "{{ " + value + " }}"
        try:
            free, pairs = expressions().references(value)
        except TemplateSyntaxError as exc:
            self.out.add(path, f"expression syntax error: {exc.message}")
            return
        except Exception as exc:  # unknown filter and friends
            self.out.add(path, f"invalid expression: {exc}")
            return
        allowed = roots | self.env_globals
        for name in sorted(free - allowed):
            hint = suggest(name, sorted(roots))
            if name in ("item", "index"):
                hint = "; 'item' and 'index' exist only inside a for_each"
            elif name == "error":
                hint = "; 'error' exists only in 'errors' and 'finally' handlers"
            self.out.add(path, f"unknown name {name!r} in expression{hint}")
        for root, key in sorted(pairs):
            if root == "outputs":
                if key in self.broken:
                    continue
                if key == self_id:
                    self.out.add(path, f"task {key!r} cannot use its own output")
                elif key not in self.all_ids:
                    self.out.add(path, f"outputs.{key}: there is no task {key!r} in this flow{suggest(key, self.all_ids | self.broken)}")
                elif key not in visible:
                    self.out.add(path, f"outputs.{key}: task {key!r} does not run before this point, so its output is not available here")
            elif root == "inputs" and key not in self.inputs:
                self.out.add(path, f"inputs.{key}: no input {key!r} is declared{suggest(key, self.inputs)}")
            elif root == "vars" and key not in self.variables:
                self.out.add(path, f"vars.{key}: no variable {key!r} is declared{suggest(key, self.variables)}")


def load_file(path: str | Path, registry: Registry | None = None) -> Flow:
    return FlowLoader(registry).load_file(path)


def load_text(text: str, file: str | None = None, registry: Registry | None = None) -> Flow:
    return FlowLoader(registry).load_text(text, file)


def flow_files(directory: str | Path) -> list[Path]:
    root = Path(directory)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
