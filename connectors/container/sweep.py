"""The sweeper: removes containers the hub labelled for executions that are no longer RUNNING (a
worker that crashed mid-step leaves its container behind; nobody else would remove it)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any, Protocol

from connectors.container.engine import LABEL_EXECUTION, DockerSettings, connect

if TYPE_CHECKING:
    from hub.core.tasks import TaskStore


class Engine(Protocol):
    """What the sweeper uses of the hub's engine: its store."""

    @property
    def store(self) -> TaskStore: ...

log = logging.getLogger("hub.container")

DEFAULT_SOCKET = "/var/run/docker.sock"  # where the SDK looks without DOCKER_HOST


async def sweep(engine: Engine) -> list[str]:
    """Remove the hub's containers whose execution is gone or not RUNNING; resumes nothing."""
    await asyncio.to_thread(sweep_containers, engine)
    return []


def sweep_containers(engine: Engine, settings: DockerSettings | None = None) -> list[str]:
    """The blocking part of :func:`sweep`; returns the ids of the containers removed."""
    settings = settings or DockerSettings()
    if not settings.host and not os.environ.get("DOCKER_HOST") and not os.path.exists(DEFAULT_SOCKET):
        return []  # no engine to ask: the docker SDK (~10 MiB) is not even imported
    import docker

    from connectors.container.tasks import _remove
    from hub.core.errors import HubError, NotFound

    try:
        client = connect(settings)
    except HubError:
        return []
    removed = []
    try:
        try:
            found: list[dict[str, Any]] = client.containers(all=True, filters={"label": [LABEL_EXECUTION]})
        except (docker.errors.DockerException, OSError) as exc:
            log.debug("container sweeper: no Docker engine answers (%s)", exc)
            return []
        for item in found:
            execution_id = (item.get("Labels") or {}).get(LABEL_EXECUTION)
            try:
                state = engine.store.get_execution(execution_id)["state"] if execution_id else None
            except NotFound:
                state = None
            if state == "RUNNING":
                continue
            _remove(client, item["Id"])
            removed.append(item["Id"])
            log.info("container sweeper: removed %s of execution %s (%s)", item["Id"][:12], execution_id, state or "gone")
    finally:
        client.close()
    return removed
