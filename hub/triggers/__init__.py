"""Triggers other than webhooks: schedule, redis_stream, file, flow. See docs/triggers.md.

The names below load lazily: the store imports ``hub.triggers.tables`` for its migrations,
and the service modules import the engine, which imports the store.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "TriggerService": "hub.triggers.service",
    "backfill": "hub.triggers.schedule",
    "trigger_states": "hub.triggers.state",
    "set_trigger_disabled": "hub.triggers.state",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _EXPORTS:
        raise AttributeError(name)
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = list(_EXPORTS)
