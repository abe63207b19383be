"""Built-in plugin: control flow and the core tasks (log, set, fail, http.request, python)."""

from __future__ import annotations

from hub.core.plugins import PluginAPI

CONTROL = {"sequential": "Sequential", "parallel": "Parallel", "if": "If", "switch": "Switch",
           "for_each": "ForEach", "subflow": "Subflow", "wait": "Wait"}


def register(hub: PluginAPI) -> None:
    for name, cls in CONTROL.items():
        hub.task_kind(name, f"hub.tasks.control:{cls}")
    hub.task_kind("log", "hub.tasks.core:Log")
    hub.task_kind("set", "hub.tasks.core:Set")
    hub.task_kind("fail", "hub.tasks.core:Fail")
    hub.task_kind("http.request", "hub.tasks.http:HttpRequest")
    hub.task_kind("python", "hub.tasks.python:Python")
    hub.settings("http", "hub.net_settings:NetSettings")
