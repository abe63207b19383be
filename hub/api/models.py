"""Request and response models of the API: what the OpenAPI document shows, with examples."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.store.api_store import SCOPE_PATTERN

MAX_INT = 2**31 - 1  # the largest number every database integer column holds (PostgreSQL INTEGER)
# -- errors -------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    path: str | None = Field(None, examples=["tasks[1].retires"])
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None


class ErrorBody(BaseModel):
    type: str = Field(examples=["NotFound"])
    message: str = Field(examples=["flow sales.leads not found"])
    details: list[ErrorDetail] = Field(default_factory=list)


class Problem(BaseModel):
    """Every failure is an RFC 9457 problem (``application/problem+json``), whatever the status;
    the hub's fields are extension members."""

    type: str = Field(
        examples=["tag:hub,2026:problem:NotFound"],
        description="URI naming the problem type: the hub's tag URI ending in `code`.",
    )
    title: str = Field(examples=["Not found"], description="Short summary of the problem type.")
    status: int = Field(examples=[404], description="The HTTP status code.")
    detail: str = Field(examples=["flow sales.leads not found"], description="What went wrong here, and how to fix it.")
    instance: str | None = Field(None, examples=["/v1/flows/sales/leads"], description="The request's path.")
    code: str = Field(examples=["NotFound"], description="The hub's short name of the problem type.")
    details: list[ErrorDetail] = Field(default_factory=list, description="Locations or fields at fault.")
    error: ErrorBody = Field(description="The same as `{type: code, message: detail, details}` (the hub's former body).")


ErrorResponse = Problem  # the name before problem details


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for the error statuses an endpoint can answer."""
    text = {
        400: "Malformed request",
        401: "No or unknown API key",
        403: "The key lacks the scope",
        404: "Not found",
        409: "Not allowed in the current state",
        422: "Invalid flow, inputs or parameters",
        429: "Rate limited (see Retry-After)",
    }
    return {s: {"model": Problem, "description": text.get(s, "Error")} for s in sorted({400, *statuses})}


# -- flows --------------------------------------------------------------------------------------


class Revision(BaseModel):
    revision: int
    content_hash: str
    created_at: float
    disabled: bool = False
    deleted: bool = False


class FlowSummary(BaseModel):
    namespace: str = Field(examples=["sales"])
    id: str = Field(examples=["lead_enrichment"])
    revision: int = Field(examples=[3])
    description: str | None = None
    disabled: bool = False
    updated_at: float


class FlowDetail(FlowSummary):
    source: str = Field(description="The flow's YAML at this revision.")
    inputs: list[dict[str, Any]] = Field(default_factory=list)
    triggers: list[dict[str, Any]] = Field(default_factory=list)
    revisions: list[Revision] = Field(default_factory=list)
    created: bool | None = Field(None, description="On save: whether a new revision was made.")


class ValidationResult(BaseModel):
    valid: bool
    flow: str | None = Field(None, description="namespace.id when the flow parsed", examples=["sales.lead_enrichment"])
    errors: list[ErrorDetail] = Field(default_factory=list)


class FlowDiff(BaseModel):
    namespace: str
    id: str
    from_revision: int
    to_revision: int
    diff: str = Field(description="Unified diff of the two revisions' YAML.")


class DeployResult(BaseModel):
    flows: list[FlowDetail]


# -- executions ----------------------------------------------------------------------------------


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"inputs": {"email": "ana@example.com"}}]})

    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class ExecutionRef(BaseModel):
    id: str = Field(examples=["0190f1e2a3b4c5d6e7f8a9b0c1d2e3f4"])
    state: str = Field(examples=["QUEUED"])
    flow: str | None = Field(None, examples=["sales.lead_enrichment"])


class StepRun(BaseModel):
    id: int
    path: str
    task_id: str
    task_type: str
    attempt: int
    state: str
    params: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: float
    ended_at: float | None = None
    trace_id: str | None = None
    span_id: str | None = None


class Execution(BaseModel):
    id: str
    namespace: str
    flow_id: str
    revision: int
    state: str = Field(examples=["SUCCESS"])
    inputs: dict[str, Any] | None = None
    outputs: Any = None
    error: dict[str, Any] | None = None
    labels: dict[str, Any] | None = None
    trigger: dict[str, Any] | None = None
    parent_id: str | None = None
    restarted_from: str | None = None
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    trace_id: str | None = None


class ExecutionDetail(Execution):
    steps: list[StepRun] = Field(default_factory=list)


class ExecutionList(BaseModel):
    items: list[Execution]
    limit: int
    offset: int
    next: str | None = Field(None, description="Cursor of the next page (`?cursor=`); null on the last page.")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"from_step": "qualify"}]})

    from_step: str = Field(description="Task id (or step path) to run again; committed steps before it are reused.")
    inputs: dict[str, Any] | None = Field(None, description="Replace the inputs (default: the original's).")


class LogLine(BaseModel):
    id: int
    execution_id: str
    path: str | None = None
    level: str
    message: str
    ts: float


# -- webhooks and enrichment ------------------------------------------------------------------------


class WebhookAccepted(BaseModel):
    id: str
    state: str
    replayed: bool = Field(False, description="True when an Idempotency-Key matched an earlier request.")
    outputs: Any = Field(None, description="With ?wait=true: the execution's outputs once it ended.")


class EnrichResult(BaseModel):
    id: str
    state: str
    outputs: Any = None
    cached: bool = False


class EnrichPending(BaseModel):
    id: str
    state: str
    message: str = "still running; poll GET /v1/executions/{id}"


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"items": [{"email": "a@x.io"}, {"email": "b@y.io"}]}]}
    )

    items: list[dict[str, Any]] = Field(description="One inputs object per item.")


class BatchItem(BaseModel):
    index: int
    id: str | None = None
    state: str | None = None
    outputs: Any = None
    cached: bool = False
    error: ErrorBody | None = None


class BatchResult(BaseModel):
    items: list[BatchItem]


# -- keys and health ------------------------------------------------------------------------------


class ApiKeyInfo(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Annotated[str, Field(pattern=SCOPE_PATTERN)]] = Field(
        min_length=1, description="admin, run, approve, read; or run:<namespace>, read:<namespace> (that "
        "namespace and those under it).")


class ApiKeyCreated(ApiKeyInfo):
    key: str = Field(description="The secret; shown once, only its hash is stored.")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
