"""Built-in plugin: the web console, its router mounted at the server's root (``/``)."""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    hub.router("hub.console.pages:router", prefix="")
    hub.settings("console", "hub.console.settings:ConsoleSettings")
