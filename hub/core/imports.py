"""Import an object named by a path (``package.module:Name``), with errors that say what to fix.

Used wherever a flow or a file names code: a python step's function (behind the module policy of
:mod:`hub.tasks.python`), a LangChain runnable, an output validator, an eval's function.
"""

from __future__ import annotations

import importlib
from typing import Any


def import_object(path: str) -> Any:
    """Import ``package.module:attr``; raises ``ValueError`` saying what to fix."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{path!r} is not an import path; write 'package.module:Name'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    return target
