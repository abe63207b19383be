"""A flow's topology as nested nodes and lanes, drawn by the ``_graph.html`` macro.

Every task is a node; a control-flow task (``sequential``, ``parallel``, ``if``, ``switch``,
``for_each`` or a plugin's own) holds lanes: each list of tasks among its parameters is a lane
named after the parameter (``then``, ``else``, a case's value), side by side where they are
alternatives or run at once. Nothing here knows the control kinds by name except to pick a label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.flow.models import Flow, Task

LOOPS = {"for_each"}
PARALLEL = {"parallel"}


@dataclass
class Lane:
    label: str
    nodes: list[Node]


@dataclass
class Node:
    id: str
    type: str
    path: str
    condition: str | None = None
    note: str | None = None
    link: str | None = None
    loop: bool = False
    parallel: bool = False
    lanes: list[Lane] = field(default_factory=list)


@dataclass
class Graph:
    triggers: list[dict[str, Any]]
    tasks: list[Node]
    errors: list[Node]
    finally_: list[Node]


def _tasks(value: Any) -> list[Task] | None:
    if isinstance(value, list) and value and all(isinstance(v, Task) for v in value):
        return value
    return None


def _note(task: Task) -> str | None:
    params = task.params
    if task.type in LOOPS and params.get("items") is not None:
        limit = params.get("concurrency")
        return f"each of {params['items']}" + (f" · {limit} at once" if limit else "")
    if task.type == "switch" and params.get("value") is not None:
        return f"on {params['value']}"
    if task.type == "if" and params.get("condition") is not None:
        return f"if {params['condition']}"
    if task.type == "llm.chat" and params.get("prompt"):
        return f"prompt {params['prompt']}"
    if task.type == "approval":
        return "waits for a human decision"
    if task.type == "wait":
        return "waits"
    return None


def _subflow_link(task: Task, namespace: str) -> str | None:
    ref = task.params.get("flow")
    if task.type != "subflow" or not isinstance(ref, str) or "{{" in ref:
        return None
    ns, _, flow_id = ref.rpartition(".")
    return f"/flows/{ns or namespace}/{flow_id}"


def node(task: Task, namespace: str, prefix: str = "") -> Node:
    path = f"{prefix}.{task.id}" if prefix else task.id
    condition = task.if_ if isinstance(task.if_, str) else None
    out = Node(id=task.id, type=task.type, path=path, condition=condition, note=_note(task),
               link=_subflow_link(task, namespace), loop=task.type in LOOPS)
    for key, value in task.params.items():
        children = _tasks(value)
        if children is not None:
            out.lanes.append(Lane(key, [node(c, namespace, path) for c in children]))
        elif isinstance(value, dict):
            for case, sub in value.items():
                case_children = _tasks(sub)
                if case_children is not None:
                    out.lanes.append(Lane(f"{key}: {case}", [node(c, namespace, path) for c in case_children]))
    out.parallel = task.type in PARALLEL and len(out.lanes) == 1
    if out.parallel:  # a parallel task's children run side by side: one lane each
        out.lanes = [Lane(n.id, [n]) for n in out.lanes[0].nodes]
    return out


def flow_graph(flow: Flow, trigger_states: dict[str, dict[str, Any]] | None = None) -> Graph:
    """The graph of one flow revision; ``trigger_states`` (by trigger id) adds their status."""
    states = trigger_states or {}
    triggers = []
    for trigger in flow.triggers:
        data = trigger.model_dump(mode="json", exclude_none=True)
        detail = data.get("cron") or data.get("stream") or data.get("path") or data.get("flow") or ""
        triggers.append({"id": trigger.id, "type": trigger.type, "detail": detail,
                         "disabled": trigger.disabled, "state": states.get(trigger.id)})
    return Graph(
        triggers=triggers,
        tasks=[node(t, flow.namespace) for t in flow.tasks],
        errors=[node(t, flow.namespace) for t in flow.errors],
        finally_=[node(t, flow.namespace) for t in flow.finally_],
    )


def depths(flow: Flow) -> dict[str, int]:
    """Each task id's nesting depth (0 for top-level tasks), for indenting timelines."""
    out: dict[str, int] = {}

    def walk(nodes: list[Node], depth: int) -> None:
        for n in nodes:
            out.setdefault(n.id, depth)
            for lane in n.lanes:
                walk(lane.nodes, depth + 1)

    graph = flow_graph(flow)
    for part in (graph.tasks, graph.errors, graph.finally_):
        walk(part, 0)
    return out
