"""A real :class:`~hub.tasks.base.TaskContext` for calling a task kind directly in a test."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from hub.settings import HubSettings
from hub.tasks.base import TaskContext


def task_context(home: Path, store: Any = None, task_id: str = "step", **kw: Any) -> TaskContext:
    execution_id = kw.pop("execution_id", uuid.uuid4().hex)
    return TaskContext(
        execution_id=execution_id,
        namespace=kw.pop("namespace", "test"),
        flow_id=kw.pop("flow_id", "flow"),
        task_id=task_id,
        path=kw.pop("path", task_id),
        attempt=kw.pop("attempt", 1),
        settings=kw.pop("settings", HubSettings(home=home)),
        store=store,
        **kw,
    )
