"""The three kinds of error the hub knows.

1. Mistakes of the flow author: :class:`FlowError` (a flow file that does not validate, with every
   location), :class:`ExpressionError` (a template that fails while it renders), :class:`InputError`
   (execution inputs that do not match the declared inputs), :class:`InvalidParameters` (a task's
   parameters that do not validate once rendered).
2. Runtime failures that carry data: :class:`TaskError` and its subclasses, :class:`ConnectorError`
   (an outside system answered badly) and :class:`TaskTimeout`.
3. Control signals that are not failures at all: :class:`Retry` and :class:`Paused`.

The engine stores the ``to_dict()`` form of an error on the step run; the API converts errors to
HTTP once, at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class HubError(Exception):
    """Base class of every error the hub raises on purpose."""

    retryable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "message": str(self), "retryable": self.retryable}


@dataclass(frozen=True)
class Location:
    """Where in a flow file a problem is: file, 1-based line and column, and the key path."""

    path: tuple[str | int, ...]
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None

    @property
    def dotted(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out or "<root>"

    def __str__(self) -> str:
        where = self.file or "<flow>"
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return f"{where}: {self.dotted}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.dotted,
            "message": self.message,
        }


class FlowError(HubError):
    """A flow definition is invalid. Carries every problem found, each with its location."""

    def __init__(self, locations: list[Location], source: str | None = None):
        self.locations = locations
        self.source = source
        count = len(locations)
        head = f"{source or 'flow'} has {count} error{'s' if count != 1 else ''}"
        super().__init__(head + ":\n" + "\n".join(f"  {loc}" for loc in locations))

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["details"] = [loc.to_dict() for loc in self.locations]
        return out


class ExpressionError(HubError):
    """A template failed at run time: names the expression and what was missing."""

    def __init__(self, message: str, expression: str | None = None, where: str | None = None):
        self.expression = expression
        self.where = where
        text = message
        if where:
            text = f"{where}: {text}"
        if expression is not None:
            text += f" (in expression {expression!r})"
        super().__init__(text)


class InputError(HubError):
    """Execution inputs do not match the flow's declared inputs."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid inputs: " + "; ".join(problems))


class InvalidSettings(HubError):
    """Settings from the environment that do not validate: one line per problem, each naming its
    variable (``HUB_...``) or file. The CLI prints them and exits 2."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class InvalidParameters(HubError):
    """A task's parameters do not validate once their expressions are rendered."""

    @classmethod
    def after_rendering(cls, task_id: str, exc: Any) -> InvalidParameters:
        """From a pydantic ``ValidationError``: every problem, each with its parameter."""
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors())
        return cls(f"parameters of {task_id} after rendering: {problems}")


class NotFound(HubError):
    """A flow, execution or other named thing does not exist."""


class TaskError(HubError):
    """A task failed at run time. ``retryable`` says whether a retry policy may try again."""

    def __init__(self, message: str, *, retryable: bool = True, data: Any = None):
        super().__init__(message)
        self.retryable = retryable
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.data is not None:
            out["data"] = self.data
        return out


class ConnectorError(TaskError):
    """An outside system answered with an error.

    ``status`` is the HTTP (or protocol) status when there is one; 429 and 5xx are retryable by
    default, other 4xx are not.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        data: Any = None,
    ):
        if retryable is None:
            retryable = status is None or status == 429 or status >= 500
        super().__init__(message, retryable=retryable, data=data)
        self.status = status
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["status"] = self.status
        return out


class TaskTimeout(TaskError):
    """A task ran past its timeout."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


class FailTask(TaskError):
    """Raised by the ``fail`` task: a deliberate, non-retryable failure."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


# -- control signals ---------------------------------------------------------------------------


class Retry(Exception):
    """Raised by a task to ask for another attempt after ``after`` seconds (within its policy)."""

    def __init__(self, reason: str, after: float | None = None):
        super().__init__(reason)
        self.after = after


@dataclass
class Paused(Exception):
    """Raised by a task to park the execution until something outside resumes it.

    ``resume_at`` (epoch seconds) asks the scheduler to resume it by itself at that time.
    ``data`` is persisted on the step run and handed back to the task when it runs again.
    """

    reason: str
    resume_at: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.reason)


def error_dict(exc: BaseException) -> dict[str, Any]:
    """The stored form of any exception."""
    if isinstance(exc, HubError):
        return exc.to_dict()
    return {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__, "retryable": True}
