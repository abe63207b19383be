"""YAML text -> :class:`~hub.flow.models.Flow`, with every mistake reported at once.

Each problem is a :class:`~hub.errors.Location` with file, line, column, the key path and a
message that says how to fix it ("unknown key 'retires'; did you mean 'retry'?").

The work is in three parts, each linear in the size of the flow: the YAML with the position of
every key (:mod:`hub.flow.yamlpos`), the tasks (:mod:`hub.flow.task_reader`), and what the
expressions refer to (:mod:`hub.flow.references`), which also compiles each expression once for
the renders to come.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hub.core.plugins import PluginError
from hub.core.registry import trigger_registry
from hub.errors import FlowError, Location
from hub.flow import yamlpos
from hub.flow.expressions import Expressions, expressions
from hub.flow.models import Flow, FlowHeader, Task
from hub.flow.problems import COMMON_KEYS, Collector, by_position, suggest
from hub.flow.references import BASE_ROOTS, check_references, check_self_calls
from hub.flow.task_reader import TaskReader, contains_template
from hub.tasks.registry import Registry, default_registry

__all__ = [
    "BASE_ROOTS", "COMMON_KEYS", "FlowLoader", "contains_template", "flow_files", "load_file", "load_text", "suggest",
]


class FlowLoader:
    """Loads flow files for one registry of task and trigger types. ``max_nodes``: the most values
    a file may hold (:data:`hub.flow.yamlpos.MAX_NODES`; None: no limit, for a trusted local file)."""

    def __init__(
        self, registry: Registry | None = None, triggers: Registry | None = None, *,
        max_nodes: int | None = yamlpos.MAX_NODES, expr: Expressions | None = None,
    ):
        self.registry = registry or default_registry()
        self.triggers = triggers or trigger_registry(self.registry.plugins)
        self.max_nodes = max_nodes
        self.expressions = expr or expressions()

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
        with yamlpos.collector_paused():  # linear in the size of the flow (see there)
            return self._load(text, file)

    def _load(self, text: str, file: str | None) -> Flow:
        try:
            data, positions = yamlpos.load(text, self.max_nodes)
        except yamlpos.YamlSyntaxError as exc:
            raise FlowError([Location((), str(exc), file, exc.line, exc.column)], file) from None
        out = Collector(file, positions)
        if not isinstance(data, dict):
            out.add((), "a flow file must be a YAML mapping with at least 'id' and 'tasks'")
            raise FlowError(out.items, file)
        try:
            header: FlowHeader | None = FlowHeader.model_validate(data)
        except ValidationError as exc:
            out.from_validation(exc, (), FlowHeader)
            header = None
        triggers = self._triggers(data.get("triggers"), out)
        reader = TaskReader(self.registry, out)
        blocks = (reader.tasks(data.get("tasks"), ("tasks",)), reader.tasks(data.get("errors"), ("errors",)),
                  reader.tasks(data.get("finally"), ("finally",)))
        if header is None or out.items:
            # reference checks need a sound tree; report what we have
            if header is not None or blocks[0]:
                self._check_references(data, header, blocks, out, set(reader.ids))
            raise FlowError(by_position(out.items), file)
        check_self_calls(header, [task for block in blocks for task in block], out)
        if out.items:
            raise FlowError(by_position(out.items), file)
        flow = _flow(header, blocks, triggers, text, file)
        self._check_references(data, header, blocks, out, set(reader.ids))
        if out.items:
            raise FlowError(by_position(out.items), file)
        return flow

    def _check_references(
        self, data: dict[str, Any], header: FlowHeader | None, blocks: tuple[list[Task], list[Task], list[Task]],
        out: Collector, declared: set[str],
    ) -> None:
        check_references(self.registry, self.expressions, data, header, blocks, out, declared)

    # -- triggers ------------------------------------------------------------------------------------

    def _triggers(self, raw: Any, out: Collector) -> list[Any]:
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



def _flow(
    header: FlowHeader, blocks: tuple[list[Task], list[Task], list[Task]], triggers: list[Any], text: str,
    file: str | None,
) -> Flow:
    tasks, errors, final = blocks
    return Flow(
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


def load_file(path: str | Path, registry: Registry | None = None) -> Flow:
    return FlowLoader(registry).load_file(path)


def load_text(text: str, file: str | None = None, registry: Registry | None = None) -> Flow:
    return FlowLoader(registry).load_text(text, file)


def flow_files(directory: str | Path) -> list[Path]:
    root = Path(directory)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
