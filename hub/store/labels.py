"""Execution labels as rows of ``execution_labels``: what the list's label filter searches."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from hub.store.json_text import as_stored


def label_text(value: Any) -> str:
    """How a label value is stored and matched: a string as itself, anything else as its JSON
    (``7`` -> ``"7"``, ``True`` -> ``"true"``). A value JSON has no word for is taken as the
    labels column stores it (a datetime as its ISO text: see :mod:`hub.store.json_text`), so the
    filter finds it by the value the execution's labels read back with."""
    if isinstance(value, str):
        return value
    stored = as_stored(value)
    return stored if isinstance(stored, str) else json.dumps(stored, sort_keys=True, separators=(",", ":"))


def label_rows(executions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``execution_labels`` rows of new execution rows."""
    return [
        {"execution_id": row["id"], "key": str(key), "value": label_text(value), "created_at": row["created_at"]}
        for row in executions for key, value in (row.get("labels") or {}).items()
    ]
