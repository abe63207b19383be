"""The hub's errors; they live in :mod:`hub.core.errors` (this name is kept for plugins that import it)."""

from hub.core.errors import (
    ConnectorError,
    ExpressionError,
    FailTask,
    FlowError,
    HubError,
    InputError,
    InvalidParameters,
    InvalidSettings,
    Location,
    NotFound,
    Paused,
    Retry,
    TaskError,
    TaskTimeout,
    error_dict,
)

__all__ = [
    "ConnectorError", "ExpressionError", "FailTask", "FlowError", "HubError", "InputError", "InvalidParameters",
    "InvalidSettings", "Location", "NotFound", "Paused", "Retry", "TaskError", "TaskTimeout", "error_dict",
]
