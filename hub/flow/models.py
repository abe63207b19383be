"""A validated flow: strict pydantic models, built by :mod:`hub.flow.loader` from YAML."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.core.durations import Duration
from hub.core.models import ID_PATTERN, Strict, TriggerBase

NAMESPACE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"


class InputType(StrEnum):
    string = "string"
    int = "int"
    float = "float"
    bool = "bool"
    json = "json"
    datetime = "datetime"
    enum = "enum"
    list = "list"


class InputSpec(Strict):
    """A declared flow input, checked when an execution starts."""

    id: str = Field(pattern=ID_PATTERN)
    type: InputType = InputType.string
    required: bool = False
    default: Any = None
    description: str | None = None
    values: list[Any] | None = Field(None, description="Allowed values (required for type enum).")
    items: InputType | None = Field(None, description="Type of each element (for type list).")

    @model_validator(mode="after")
    def _enum_needs_values(self) -> InputSpec:
        if self.type is InputType.enum and not self.values:
            raise ValueError("an enum input needs 'values'")
        return self


class RetryPolicy(Strict):
    """How a failed attempt is retried. Only retryable errors are retried."""

    type: Literal["constant", "exponential"] = "exponential"
    max_attempts: int = Field(3, ge=1, description="Attempts in all, the first one included.")
    interval: Duration = Field(1.0, description="Wait before the first retry.")
    max_interval: Duration | None = Field(None, description="Cap on the wait (exponential).")
    multiplier: float = Field(2.0, gt=1.0)
    max_duration: Duration | None = Field(None, description="Stop retrying once this much time passed.")
    jitter: float = Field(0.1, ge=0, le=1, description="Random spread, as a fraction of the wait.")


class ConcurrencySpec(Strict):
    limit: int = Field(ge=1)
    behavior: Literal["queue", "cancel", "fail"] = "queue"


class ScheduleTrigger(TriggerBase):
    type: Literal["schedule"]
    cron: str
    timezone: str = "UTC"
    catchup: Literal["once", "all", "none"] = "once"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a valid cron expression")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value


class WebhookTrigger(TriggerBase):
    type: Literal["webhook"]
    secret: str | None = Field(None, description="Shared key, sent as ?key= or X-Hub-Key.")
    signing_secret: str | None = Field(None, description="HMAC-SHA256 key over timestamp and body.")
    tolerance: Duration = Field(300.0, description="Replay window for signed requests.")


class RedisStreamTrigger(TriggerBase):
    type: Literal["redis_stream"]
    stream: str
    group: str = "hub"
    url: str | None = None


class FileTrigger(TriggerBase):
    type: Literal["file"]
    path: str
    pattern: str = "*"
    interval: Duration = 2.0


class FlowTrigger(TriggerBase):
    type: Literal["flow"]
    flow: str = Field(description="namespace.flow_id of the upstream flow")
    states: list[str] = Field(default_factory=lambda: ["SUCCESS"])
    condition: str | None = None


Trigger = Annotated[
    ScheduleTrigger | WebhookTrigger | RedisStreamTrigger | FileTrigger | FlowTrigger,
    Field(discriminator="type"),
]


class Task(BaseModel):
    """One validated step. ``params`` are the kind's parameters, still unrendered templates;
    for control-flow kinds the nested task lists in ``params`` are ``Task`` objects."""

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    id: str
    type: str
    description: str | None = None
    if_: str | bool | None = Field(None, alias="if")
    retry: RetryPolicy | None = None
    timeout: float | None = None
    allow_failure: bool = False
    params: dict[str, Any] = Field(default_factory=dict)
    line: int | None = None
    path: tuple[str | int, ...] = Field(default=(), exclude=True)

    def children(self) -> list[tuple[str, list[Task]]]:
        """Nested task lists, each with the name of the branch they are in."""
        out: list[tuple[str, list[Task]]] = []
        for key, value in self.params.items():
            if isinstance(value, list) and value and all(isinstance(t, Task) for t in value):
                out.append((key, value))
            elif isinstance(value, dict) and value and all(
                isinstance(v, list) and all(isinstance(t, Task) for t in v) for v in value.values()
            ):
                out.extend((f"{key}.{name}", tasks) for name, tasks in value.items())
        return out

    def descendants(self) -> list[Task]:
        """Every task nested in this one, at any depth."""
        return walk_tasks(kid for _, kids in self.children() for kid in kids)


def walk_tasks(tasks: Iterable[Task]) -> list[Task]:
    """``tasks`` and every task nested in them, depth first."""
    out: list[Task] = []
    for task in tasks:
        out.append(task)
        out.extend(task.descendants())
    return out


class FlowHeader(Strict):
    """Top-level keys of a flow file; ``tasks``, ``errors`` and ``finally`` are walked separately."""

    id: str = Field(pattern=ID_PATTERN)
    namespace: str = Field("default", pattern=NAMESPACE_PATTERN)
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    inputs: list[InputSpec] = Field(default_factory=list)
    variables: dict[str, Any] = Field(default_factory=dict)
    tasks: list[Any] = Field(min_length=1)
    errors: list[Any] = Field(default_factory=list)
    finally_: list[Any] = Field(default_factory=list, alias="finally")
    outputs: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy | None = None
    timeout: Duration | None = None
    concurrency: ConcurrencySpec | None = None
    triggers: list[Any] = Field(
        default_factory=list, description="Each validated by the model of its trigger type (a plugin's Config)."
    )
    disabled: bool = False
    max_cost: float | None = Field(None, ge=0, description="Stop the execution when LLM cost (USD) would pass this.")

    @field_validator("inputs")
    @classmethod
    def _unique_inputs(cls, value: list[InputSpec]) -> list[InputSpec]:
        seen: set[str] = set()
        for spec in value:
            if spec.id in seen:
                raise ValueError(f"input {spec.id!r} is declared twice")
            seen.add(spec.id)
        return value


class Flow(BaseModel):
    """A flow ready to run."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str
    namespace: str = "default"
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    inputs: list[InputSpec] = Field(default_factory=list)
    variables: dict[str, Any] = Field(default_factory=dict)
    tasks: list[Task]
    errors: list[Task] = Field(default_factory=list)
    finally_: list[Task] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy | None = None
    timeout: float | None = None
    concurrency: ConcurrencySpec | None = None
    triggers: list[Any] = Field(default_factory=list)
    disabled: bool = False
    max_cost: float | None = None
    source: str = ""
    file: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}.{self.id}"

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()

    def all_tasks(self) -> list[Task]:
        return walk_tasks([*self.tasks, *self.errors, *self.finally_])

    def find(self, task_id: str) -> Task | None:
        return next((t for t in self.all_tasks() if t.id == task_id), None)


