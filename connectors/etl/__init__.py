"""ETL tasks: ``etl.extract``, ``etl.transform`` and ``etl.load``.

Rows move in batches and pass between steps as dataset artifacts (see :mod:`connectors.etl.dataset`).
"""

from __future__ import annotations

from typing import Any

from connectors.etl.extract import Extract
from connectors.etl.load import Load
from connectors.etl.transform import Transform

__all__ = ["Extract", "Load", "Transform", "register"]


def register(registry: Any) -> None:
    for kind in (Extract, Transform, Load):
        registry.add(kind)
