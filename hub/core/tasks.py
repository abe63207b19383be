"""The one protocol every task kind implements, and the context a task runs with.

A task kind is a class with a ``type`` name, a pydantic ``Params`` model and one coroutine::

    class Echo:
        type = "example.echo"
        Params = EchoParams

        async def run(self, ctx: TaskContext, params: EchoParams) -> Any:
            return {"said": params.text}

The engine renders the step's parameters, validates them with ``Params``, and calls ``run``.
Retries, timeouts, tracing and persistence wrap that call; they are not the task's business.
The return value (JSON-serialisable) becomes ``outputs.<task id>``.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, cast, runtime_checkable

from pydantic import BaseModel, ConfigDict
from pydantic_settings import BaseSettings

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine

S = TypeVar("S", bound=BaseSettings)
T = TypeVar("T")


class TaskSettings(Protocol):
    """What a task may read of the process's settings (:class:`hub.settings.HubSettings` is one):
    the hub-wide values and the section of any plugin (``ctx.settings.section(SlackSettings)``)."""

    @property
    def home(self) -> Path: ...
    @property
    def redis_url(self) -> str | None: ...
    @property
    def prompts_dir(self) -> Path: ...
    @property
    def python_modules(self) -> str | None: ...

    def section(self, cls: builtins.type[S]) -> S: ...


class TaskStore(Protocol):
    """What a task may use of the store (:class:`hub.store.store.Store` is one): its database,
    blobs, and the rows of executions and flow revisions."""

    @property
    def engine(self) -> Engine: ...

    def put_blob(self, data: bytes, execution_id: str | None = ..., content_type: str = ...) -> str: ...
    def get_blob(self, blob_id: str) -> bytes: ...
    def get_execution(self, execution_id: str) -> dict[str, Any]: ...
    def get_flow_source(self, namespace: str, flow_id: str, revision: int | None = ...) -> tuple[int, str]: ...


class Params(BaseModel):
    """Base for task parameter models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ServiceKey(Generic[T]):
    """The typed name of a service a task may use (a client built once by the process, or a thing
    a parent step lends its children): ``ctx.service(LLM_CLIENT)`` is typed as the key says. The
    module that provides a service declares its key beside the service's type; the engine keeps
    the services by name (``engine.services[key.name]``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"ServiceKey({self.name!r})"


class StepResources(contextlib.AsyncExitStack):
    """Connections a step keeps open for the tasks it runs inside it, closed when it ends: an
    agent hands one to its tool calls (``ctx.service(RESOURCES)``) so that, say, an MCP
    server is started once per agent run rather than once per call. ``cache`` holds them by key."""

    def __init__(self) -> None:
        super().__init__()
        self.cache: dict[str, Any] = {}


RESOURCES: ServiceKey[StepResources] = ServiceKey("resources")
"""What the step running this task lends it (an agent to its tool calls)."""


RunFlow = Callable[[str, dict[str, Any], str], Awaitable[dict[str, Any]]]
"""``await run_flow(ref, inputs, key)``: start the flow ``ref`` (``namespace.id``, or ``id`` in the
step's namespace) as a child execution of this step — once per ``key``, whatever re-runs happen —
run it here and return its execution row (``state``, ``outputs``, ``error``)."""


@runtime_checkable
class TaskKind(Protocol):
    """A kind of task. ``run`` does the work; everything else wraps it."""

    type: ClassVar[str]
    Params: ClassVar[builtins.type[BaseModel]]

    async def run(self, ctx: TaskContext, params: Any) -> Any: ...


class FlowView(Protocol):
    """What a task may read of the flow its execution runs (:class:`hub.flow.models.Flow` is one)."""

    @property
    def id(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def max_cost(self) -> float | None: ...


@dataclass(frozen=True)
class TaskContext:
    """What a running task may know and use.

    ``idempotency_key`` is stable across re-runs of the same step in the same execution
    (``<execution id>:<step path>``): pass it to outside systems that deduplicate, so that an
    at-least-once re-run after a crash has its side effect only once.
    """

    execution_id: str
    namespace: str
    flow_id: str
    task_id: str
    path: str
    attempt: int
    settings: TaskSettings
    store: TaskStore | None = None
    logger: logging.Logger | logging.LoggerAdapter[Any] = field(
        default_factory=lambda: logging.getLogger("hub.task")
    )
    redact: Callable[[Any], Any] = field(default=lambda value: value)
    state: dict[str, Any] = field(default_factory=dict)
    """Data a task persisted when it paused (see :class:`hub.core.errors.Paused`); empty on a first run."""
    services: dict[str, Any] = field(default_factory=dict)
    """Clients built once by the process (HTTP client, LLM client, ...), keyed by name: read them
    typed with :meth:`service`."""
    flow: FlowView | None = None
    """The parsed flow the execution runs (:class:`hub.flow.models.Flow`), when the engine runs it."""
    execution: dict[str, Any] | None = None
    """The execution's row as the engine took it (ids, revision, inputs, created_at), when known;
    ``{}`` when the step runs outside any execution (an eval's case run): there is none to read."""
    emit: Callable[[dict[str, Any]], None] = field(default=lambda event: None)
    """Send a live event (e.g. ``{"event": "token", "text": ...}``) to the execution's listeners:
    ``hub run``'s progress and the execution's SSE stream. Not stored."""
    issue_resume_token: Callable[[], str] | None = field(default=None, repr=False)
    child_resume_token: Callable[[int], str] | None = field(default=None, repr=False)
    """A resume token for a child step run this step wrote (an agent's gated tool call,
    ``<step>.tools[k].approval``), given its row id; set when the engine runs a side-effecting step.
    ``engine.complete(token, output)`` ends that child and wakes the execution; this step, paused
    meanwhile, runs again and reads the child's output."""
    run_flow: RunFlow | None = field(default=None, repr=False)
    """Run another flow as a child execution (see :data:`RunFlow`); set when the engine runs the step."""

    @property
    def resume_token(self) -> str:
        """The token that ends this step once it has paused: hand it to whoever answers and raise
        :class:`hub.core.errors.Paused`; ``await engine.complete(token, output)`` makes ``output`` the
        step's output and continues the execution (see :mod:`hub.engine.pauses`)."""
        if self.issue_resume_token is None:
            raise RuntimeError("this step cannot pause with a resume token (it runs outside the engine)")
        token = self.__dict__.get("_token")
        if token is None:
            token = self.__dict__["_token"] = self.issue_resume_token()
        return str(token)

    @property
    def idempotency_key(self) -> str:
        return f"{self.execution_id}:{self.path}"

    def service(self, key: ServiceKey[T]) -> T | None:
        """The service named by ``key``, typed as it says; None when this process has none (the
        task then builds its own, or says what is missing)."""
        return cast("T | None", self.services.get(key.name))

    def lending(self, key: ServiceKey[T], service: T) -> TaskContext:
        """This context with ``service`` under ``key`` as well, for a child task this step runs."""
        return dataclasses.replace(self, services={**self.services, key.name: service})

    def log(self, message: str, level: str = "info", **extra: Any) -> None:
        """Write a line to the execution's log (secrets redacted)."""
        self.logger.log(logging.getLevelName(level.upper()), self.redact(message), extra=extra or None)
