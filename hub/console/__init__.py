"""The web console: server-rendered pages over the same engine, keys and scopes as ``/v1``.

Flows (graph, source, revisions, editor, run form), executions (list, Gantt, live over SSE,
actions), traces (waterfall), the approvals inbox, prompts and eval runs, and the API docs served
offline. A built-in plugin (:mod:`hub.console.plugin`) mounts it at ``/``; see docs/console.md.
"""
