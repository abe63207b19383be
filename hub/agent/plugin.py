"""Built-in plugin: the ``llm.agent`` task kind."""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    hub.task_kind("llm.agent", "hub.agent.task:Agent")
