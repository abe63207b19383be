"""The ``script`` task kind: a script in any language (bash, sh, python3, node or any command line)
run in a fresh temporary working directory, with input and output files, secrets in its
environment redacted from the log, a timeout that kills its whole process group, and structured
outputs (``::outputs:: {json}`` lines or an ``outputs.json`` file).

Importing this package is cheap: the task's module loads when a flow uses it.
"""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    """The script connector's contributions (entry point ``hub.plugins``)."""
    hub.task_kind("script", "connectors.script.tasks:Script")
