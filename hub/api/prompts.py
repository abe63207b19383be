"""``/v1/prompts``: list, show, diff, label, promote, sync; ``/v1/executions/{id}/llm``: the LLM
calls of one execution with their totals. Thin: the registry and the call log do the work."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import Principal, require
from hub.api.context import Hub, get_hub
from hub.api.errors import ApiError
from hub.api.models import errors
from hub.api.paging import CURSOR_HELP, link_next, next_cursor, start_after
from hub.errors import HubError
from hub.llm.records import CallLog
from hub.prompts.registry import Move, PromptRegistry, ProtectedLabel
from hub.prompts.spec import PromptFileError

router = APIRouter(tags=["prompts"])


class _Audit(BaseModel):
    reason: str | None = Field(None, description="Why the label moves (kept in the label history).")
    eval_run: str | None = Field(None, description="A passing eval run of this version that justifies the move.")
    force: bool = Field(False, description="Move a protected label without an eval run (needs a reason; audited).")


class LabelRequest(_Audit):
    model_config = ConfigDict(extra="forbid")

    version: str | int = Field(description="A version number, a label, or 'latest'.", examples=[3, "staging"])


class PromoteRequest(_Audit):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str | int = Field("staging", alias="from", description="The version or label to promote.")
    to: str = Field("production", description="The label that moves.")


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str | None = Field(None, description="Stored on every new version.")


def registry(hub: Hub = Depends(get_hub)) -> PromptRegistry:
    engine = hub.engine
    return PromptRegistry(engine.store.engine, engine.settings.prompts_dir, protected=engine.settings.protected())


def _move(reg: PromptRegistry, name: str, version: str | int, body: _Audit, principal: Principal) -> Move:
    eval_run = body.eval_run
    if eval_run:
        from hub.evals.gate import verify_evidence
        from hub.evals.results import EvalStore

        try:
            eval_run = verify_evidence(EvalStore(reg.engine), name, reg.version_of(name, version), eval_run)
        except HubError as exc:
            raise ApiError(409, str(exc)) from None
    return Move(actor=f"key:{principal.name}", reason=body.reason, eval_run=eval_run, force=body.force)


def _user_error(exc: Exception) -> ApiError:
    return ApiError(422, str(exc))


@router.get("/prompts", dependencies=[Depends(require("read"))], responses=errors(401, 403, 422))
def list_prompts(reg: PromptRegistry = Depends(registry)) -> list[dict[str, Any]]:
    """Every stored prompt with its newest version and labels."""
    return reg.names()


@router.post("/prompts/sync", dependencies=[Depends(require("admin"))], responses=errors(401, 403, 422))
def sync_prompts(body: SyncRequest | None = None, reg: PromptRegistry = Depends(registry)) -> list[dict[str, Any]]:
    """Store changed prompt files as new versions."""
    try:
        synced = reg.sync(message=body.message if body else None)
    except PromptFileError as exc:
        raise _user_error(exc) from None
    return [{"name": s.name, "version": s.version, "created": s.created, "path": s.path} for s in synced]


@router.get("/prompts/{name}", dependencies=[Depends(require("read"))], responses=errors(401, 403, 404, 422))
def show_prompt(
    name: str, limit: int = Query(1000, ge=1, le=1000), cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
    reg: PromptRegistry = Depends(registry),
) -> dict[str, Any]:
    """A prompt's labels and versions (oldest first; ``next``: the cursor of the next page of versions)."""
    versions = reg.versions(name, limit + 1, start_after(cursor, (int,)))
    following = next_cursor(versions, limit, lambda v: [v["version"]])
    return {"name": name, "labels": reg.labels(name), "versions": versions, "next": following}


@router.get("/prompts/{name}/versions/{version}", dependencies=[Depends(require("read"))], responses=errors(401, 403, 404, 422))
def show_version(name: str, version: str, reg: PromptRegistry = Depends(registry)) -> dict[str, Any]:
    """One version (a number, a label or ``latest``): its spec and source."""
    row = reg.get(name, reg.version_of(name, version))
    return {k: row[k] for k in ("name", "version", "content_hash", "spec", "source", "message", "created_at")}


@router.get("/prompts/{name}/diff", dependencies=[Depends(require("read"))], responses=errors(401, 403, 404, 422))
def diff_versions(
    name: str,
    a: str = Query(description="Version or label"),
    b: str = Query("latest", description="Version or label"),
    reg: PromptRegistry = Depends(registry),
) -> dict[str, Any]:
    """A unified diff of two versions' sources."""
    return {"name": name, "a": reg.version_of(name, a), "b": reg.version_of(name, b), "diff": reg.diff(name, a, b)}


@router.get("/prompts/{name}/history", dependencies=[Depends(require("read"))], responses=errors(401, 403, 404, 422))
def label_history(
    name: str, request: Request, response: Response, limit: int = Query(1000, ge=1, le=1000), cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
    reg: PromptRegistry = Depends(registry),
) -> list[dict[str, Any]]:
    """Every move of every label, oldest first: when, who (``actor``), why (``reason``), the
    eval run that justified it (``eval_run``) and whether it was ``forced``. The next page is in
    ``Link`` / ``Hub-Next-Cursor``."""
    reg.versions(name, 1)  # 404 for an unknown prompt
    moves = reg.history(name, limit + 1, start_after(cursor, (int,)))
    link_next(request, response, next_cursor(moves, limit, lambda m: [m["id"]]))
    return moves


@router.put("/prompts/{name}/labels/{label}", responses=errors(401, 403, 404, 409, 422))
def set_label(
    name: str, label: str, body: LabelRequest, reg: PromptRegistry = Depends(registry),
    principal: Principal = Depends(require("admin")),
) -> dict[str, Any]:
    """Point a label at a version. A protected label (``HUB_PROTECTED_LABELS``) needs
    ``eval_run`` (a passing eval of that version) or ``force`` with a ``reason``: 409 otherwise."""
    try:
        previous = reg.set_label(name, label, body.version, _move(reg, name, body.version, body, principal))
    except ProtectedLabel as exc:
        raise ApiError(409, str(exc)) from None
    except ValueError as exc:
        raise _user_error(exc) from None
    return {"name": name, "label": label, "version": reg.labels(name)[label], "previous": previous}


@router.post("/prompts/{name}/promote", responses=errors(401, 403, 404, 409, 422))
def promote(
    name: str, body: PromoteRequest, reg: PromptRegistry = Depends(registry), principal: Principal = Depends(require("admin")),
) -> dict[str, Any]:
    """Move label ``to`` (default production) onto the version ``from`` names (default staging);
    a protected label needs ``eval_run`` or ``force`` with a ``reason`` (409 otherwise)."""
    try:
        version, previous = reg.promote(name, body.from_, body.to, _move(reg, name, body.from_, body, principal))
    except ProtectedLabel as exc:
        raise ApiError(409, str(exc)) from None
    except ValueError as exc:
        raise _user_error(exc) from None
    return {"name": name, "label": body.to, "version": version, "previous": previous}


@router.get("/executions/{execution_id}/llm", dependencies=[Depends(require("read"))], responses=errors(401, 403, 404, 422))
def execution_llm_calls(
    execution_id: str, limit: int = Query(1000, ge=1, le=1000), cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
    hub: Hub = Depends(get_hub),
) -> dict[str, Any]:
    """The LLM calls of one execution (prompt version, model, tokens, cost, latency), oldest first,
    and totals (of every call); ``next``: the cursor of the next page of calls."""
    hub.engine.store.get_execution(execution_id)  # 404 for an unknown execution
    log = CallLog(hub.engine.store.engine)
    calls = log.calls(execution_id, limit=limit + 1, after=start_after(cursor, (int,)))
    following = next_cursor(calls, limit, lambda c: [c["id"]])
    return {"execution_id": execution_id, "totals": log.totals(execution_id), "calls": calls, "next": following}
