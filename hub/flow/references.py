"""What a flow's expressions refer to, checked before it runs: every name is known where it is
used (``item`` only inside a ``for_each``, ``error`` only in handlers), every ``outputs.<id>`` is a
task that runs before that point, every ``inputs.<x>`` and ``vars.<x>`` is declared.

Each expression is compiled here, once: the process's expression cache keeps the compiled form for
its renders.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from jinja2 import TemplateSyntaxError

from hub.flow.expressions import Expressions, is_template
from hub.flow.models import FlowHeader, Task, walk_tasks
from hub.flow.problems import Collector, suggest
from hub.tasks.registry import Registry

BASE_ROOTS = frozenset({"inputs", "vars", "outputs", "execution", "trigger", "secret", "now", "range"})
"""Names every task's expressions may use."""


class _Upstream:
    """The task ids that run before a point of a block: those before the block (``parent``) and
    those of the block so far (``own``, which grows as the block is walked). Asked, never copied:
    a block of n tasks is checked in O(n), not O(n^2)."""

    __slots__ = ("own", "parent")

    def __init__(self, parent: Container[str], own: set[str]):
        self.parent = parent
        self.own = own

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.own or task_id in self.parent


def check_references(
    registry: Registry, expressions: Expressions, data: dict[str, Any], header: FlowHeader | None,
    blocks: tuple[list[Task], list[Task], list[Task]], out: Collector, declared: set[str] | None = None,
) -> None:
    """Check the expressions of a flow's ``data`` (``blocks``: its tasks, errors and finally tasks,
    the ones that validated; ``declared``: every task id written, valid or not)."""
    tasks, errors, final = blocks
    input_ids: set[str] = (
        {i.id for i in header.inputs} if header
        else {str(i.get("id")) for i in data.get("inputs") or [] if isinstance(i, dict)}
    )
    var_ids = set(header.variables) if header else set(data.get("variables") or {})
    all_ids = {t.id for t in walk_tasks([*tasks, *errors, *final])}
    checker = _RefChecker(
        registry, expressions, out, input_ids, var_ids, all_ids, (declared or set()) - all_ids
    )
    for key, value in (data.get("variables") or {}).items():
        checker.check(value, ("variables", key), visible=set(), roots={"inputs", "execution", "trigger", "secret", "now", "range"})
    for i, trig in enumerate(data.get("triggers") or []):
        if isinstance(trig, dict):
            checker.check(trig.get("inputs") or {}, ("triggers", i, "inputs"), visible=set(),
                          roots={"trigger", "execution", "secret", "now", "range", "vars"})
            for key in ("path", "secret", "signing_secret"):  # rendered with secret() and now() only
                if isinstance(trig.get(key), str):
                    checker.check(trig[key], ("triggers", i, key), visible=set(), roots={"secret", "now", "range"})
    main_ids = checker.walk(tasks, set(), BASE_ROOTS)
    handler_roots = BASE_ROOTS | {"error"}
    checker.walk(errors, main_ids, handler_roots)
    checker.walk(final, all_ids, handler_roots)
    checker.check(data.get("outputs") or {}, ("outputs",), visible=all_ids, roots=BASE_ROOTS)


class _RefChecker:
    def __init__(
        self, registry: Registry, expressions: Expressions, out: Collector, inputs: set[str], variables: set[str],
        all_ids: set[str], broken: set[str],
    ):
        self.registry = registry
        self.expressions = expressions
        self.broken = broken  # ids of tasks that failed to validate: no second error about them
        self.out = out
        self.inputs = inputs
        self.variables = variables
        self.all_ids = all_ids
        self.env_globals = set(expressions.env.globals)

    def walk(
        self, tasks: list[Task], visible: Container[str], roots: set[str] | frozenset[str], sequential: bool = True,
    ) -> set[str]:
        """Check each task's templates against what runs before it; return the ids the block adds.
        In a sequential block a task sees the tasks before it; in a parallel one, only ``visible``."""
        added: set[str] = set()
        upstream = _Upstream(visible, added) if sequential else visible
        for task in tasks:
            tpath = task.path
            if task.if_ is not None and isinstance(task.if_, str):
                self.check(task.if_, (*tpath, "if"), upstream, roots, self_id=task.id, condition=True)
            kind = self.registry.get(task.type)
            nested = getattr(kind, "nested", {})
            for key, value in task.params.items():
                if key not in nested:
                    self.check(value, (*tpath, key), upstream, roots, self_id=task.id,
                               condition=(task.type == "if" and key == "condition"))
            inner_roots = roots | ({"item", "index"} if task.type == "for_each" else set())
            child_seq = getattr(kind, "sequential_children", True)
            inner: set[str] = set()  # the branches of one task do not see each other
            for key, value in task.params.items():
                if key in nested:
                    for kids in value.values() if nested[key] == "map" else [value]:
                        inner |= self.walk(kids, upstream, inner_roots, child_seq)
            added |= inner
            added.add(task.id)
        return added

    def check(
        self, value: Any, path: tuple[str | int, ...], visible: Container[str], roots: set[str] | frozenset[str],
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
            free, pairs = self.expressions.references(value)
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


def check_self_calls(header: FlowHeader, tasks: list[Task], out: Collector) -> None:
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


