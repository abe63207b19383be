"""The web console: server-rendered pages over the same engine, keys and scopes as ``/v1``.

Flows (graph, source, revisions, editor, run form), executions (list, Gantt, live over SSE,
actions), traces (waterfall), the approvals inbox, prompts and eval runs, and the API docs served
offline. Mounted at ``/`` by ``hub serve``; see docs/console.md.
"""

from __future__ import annotations

from typing import Any

ROUTER = "hub.console.pages:router"


def register(hub: Any) -> None:
    """The console as a plugin: its router, mounted at the server's root."""
    hub.router(ROUTER, prefix="")
