"""The error handling of the prompt and eval commands: file mistakes are a message, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The hub's CLI error handling (:func:`hub.cli.user_errors`), plus the errors of prompt,
    eval, models and settings files (``ValueError``) and of files named on the command line
    (``OSError``): a message and exit 1, never a traceback."""
    from hub.core.host import COMMANDS, lookup

    hub_user_errors = lookup(COMMANDS).user_errors  # the app's, lent: a feature does not import it

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, OSError) as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)

    return hub_user_errors(wrapper)
