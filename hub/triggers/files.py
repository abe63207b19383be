"""``file`` triggers: one execution per new file in a watched directory.

A new file (matching ``pattern``, untouched for :data:`SETTLE` seconds; write elsewhere and
rename into the folder for an atomic drop) is moved to ``processing/`` and its execution is
started with ``trigger.path`` pointing there. When the execution ends the file goes to
``processed/`` (SUCCESS, WARNING) or ``failed/`` (anything else, or no execution could start).
The execution id derives from the file's name, size and mtime, so a scan interrupted between
the move and the start is completed by the next scan, which starts the files it finds in
``processing/`` without an execution.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from hub.engine.runner import Engine
from hub.engine.states import TERMINAL, State
from hub.errors import HubError, NotFound
from hub.triggers.base import Bound, execution_id_for, fire, render_field
from hub.triggers.state import TriggerStates

log = logging.getLogger(__name__)

SETTLE = 0.2
PROCESSING, PROCESSED, FAILED = "processing", "processed", "failed"


def _event_key(path: Path) -> str:
    stat = path.stat()
    return f"file:{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


async def scan(engine: Engine, bound: Bound, states: TriggerStates | None = None) -> list[str]:
    """One pass over the folder; returns the ids of executions started."""
    states = states or TriggerStates(engine.store)
    states.ensure(*bound.key, "file")
    root = Path(str(render_field(engine, bound, bound.trigger.path, "path")))
    if not root.is_dir():
        states.failed(*bound.key, f"watched folder {root} does not exist")
        return []
    for sub in (PROCESSING, PROCESSED, FAILED):
        (root / sub).mkdir(exist_ok=True)
    started = []
    now = time.time()
    for path in sorted(root.glob(bound.trigger.pattern)):
        if not path.is_file() or path.name.startswith(".") or now - path.stat().st_mtime < SETTLE:
            continue
        target = root / PROCESSING / path.name
        if target.exists():
            target = root / PROCESSING / f"{int(now * 1000)}-{path.name}"
        os.replace(path, target)
        execution_id = await _start(engine, bound, target, states)
        if execution_id:
            started.append(execution_id)
    started.extend(await _settle(engine, bound, root, states))
    return started


async def _start(engine: Engine, bound: Bound, path: Path, states: TriggerStates) -> str | None:
    data = {"path": str(path), "name": path.name, "size": path.stat().st_size}
    try:
        execution_id, _ = await fire(engine, bound, data, _event_key(path), states)
    except HubError as exc:
        log.warning("file trigger %s: %s", bound.name, exc)
        _move(path, path.parent.parent / FAILED)
        return None
    return execution_id


async def _settle(engine: Engine, bound: Bound, root: Path, states: TriggerStates) -> list[str]:
    """Files whose execution ended leave ``processing/``; a file there with no execution (the
    process stopped between the move and the start) is started now. Returns the ids started."""
    started = []
    for path in sorted((root / PROCESSING).iterdir()):
        if not path.is_file():
            continue
        try:
            execution = engine.store.get_execution(execution_id_for(bound, _event_key(path)))
        except NotFound:
            execution_id = await _start(engine, bound, path, states)
            if execution_id:
                started.append(execution_id)
            continue
        if execution["state"] in TERMINAL:
            ok = execution["state"] in (State.SUCCESS, State.WARNING)
            _move(path, root / (PROCESSED if ok else FAILED))
    return started


def _move(path: Path, folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists():
        target = folder / f"{int(time.time() * 1000)}-{path.name}"
    os.replace(path, target)
