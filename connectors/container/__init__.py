"""The ``container`` task kind: run an image through the Docker Engine API (the ``docker`` SDK), with
input and output files in a mounted working directory, resource limits, no network by default,
logs streamed into the execution's log, and the container removed afterwards. A sweeper removes
containers left behind by a worker that crashed.

Importing this package is cheap: the ``docker`` SDK loads when a step or the sweeper runs.
"""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    """The container connector's contributions (entry point ``hub.plugins``)."""
    hub.task_kind("container", "connectors.container.tasks:Container")
    hub.sweeper("connectors.container.sweep:sweep")
    hub.settings("docker", "connectors.container.engine:DockerSettings")
