"""Eval endpoints (mounted under ``/v1``): start runs, read results, grow datasets.

- ``POST /evals/runs``: run an eval file of the evals folder (``HUB_EVALS_DIR``, default
  ``evals``); answers 202 with the run id (``"wait": true`` answers 200 once it ended).
- ``GET /evals/runs``, ``GET /evals/runs/{id}`` (summary), ``GET /evals/runs/{id}/results``,
  ``GET /evals/runs/{id}/report.html``.
- ``POST /evals/cases``: add an executed LLM call to an eval as a new case.
- ``GET /evals/promotions``: label moves an eval run justified.

Starting runs and adding cases need the ``run`` scope, reading needs ``read``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hub.api.errors import ApiError
from hub.api.models import MAX_INT
from hub.api.paging import CURSOR_HELP, link_next, next_cursor, start_after
from hub.errors import HubError, NotFound
from hub.evals.results import EvalStore, new_run_id

try:
    from hub.api.auth import require

    _read: list[Any] = [Depends(require("read"))]
    _run: list[Any] = [Depends(require("run"))]
except ImportError:  # a bare app without the service's auth
    _read, _run = [], []

router = APIRouter(prefix="/evals", tags=["evals"])


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="Eval file, relative to the evals folder (e.g. support_triage.yaml).")
    versions: list[str] | None = Field(None, description="Versions or labels (default: the file's).")
    models: list[str] | None = None
    tags: list[str] | None = Field(None, description="Only cases with one of these tags.")
    baseline: str | None = Field(None, description="An earlier run id to compare with.")
    candidate: str | None = Field(None, description="Judge this version (or label) against 'against' with the gates.")
    against: str | None = Field(None, description="The version (or label, e.g. production) the candidate would replace.")
    cases: list[str] | None = Field(None, description="Only cases whose id matches one of these globs.")
    filter_failing: str | None = Field(None, description="Only the cases that failed in this earlier run.")
    repeat: int | None = Field(None, ge=1, le=50, description="Runs per case (default: the file's).")
    max_concurrency: int | None = Field(None, ge=1, le=256, description="Case runs at once (default: the file's).")
    cache: bool | None = Field(None, description="false: ask the models again instead of reusing cached answers.")
    wait: bool = Field(False, description="Answer once the run ended (200) instead of at once (202).")


class CaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="Eval file, relative to the evals folder.")
    call_id: int | None = Field(None, ge=1, le=MAX_INT, description="An LLM call record id.")
    execution_id: str | None = None
    step: str | None = Field(None, description="Step path of the LLM call (with execution_id).")
    expected: Any = Field(None, description="The corrected expected output (default: the model's output).")
    id: str | None = None
    tags: list[str] = Field(default_factory=list)
    note: str | None = None


def _file(name: str, settings: Any) -> Path:
    """The eval file ``name`` inside the evals folder (``HUB_EVALS_DIR``)."""
    folder: Path = settings.evals_dir
    root = folder.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise ApiError(422, f"{name!r} is outside the evals folder")
    if not path.is_file():
        raise NotFound(f"there is no eval file {name!r} in {folder}")
    return path


def _parts(request: Request) -> tuple[Any, Any, Any]:
    """(store, llm client, hub settings) from the app."""
    from hub.llm.client import default_client
    from hub.llm.services import LLM_CLIENT
    from hub.llm.settings import LLMSettings

    state = request.app.state
    hub = getattr(state, "hub", None)
    engine = hub.engine if hub is not None else getattr(state, "engine", None)
    if engine is None:
        raise HubError("the app has no engine (app.state.hub or app.state.engine)")
    return engine.store, engine.services.get(LLM_CLIENT.name) or default_client(engine.settings.section(LLMSettings)), engine.settings


@router.post("/runs", dependencies=_run, status_code=202)
async def start_run(body: RunRequest, request: Request) -> Any:
    """Start an eval run; 202 with its id, or 200 with its summary when ``wait`` is true."""
    from hub.evals.cli import failing_cases
    from hub.evals.preflight import EvalReferenceError
    from hub.evals.runner import EvalRunner, Selection
    from hub.evals.spec import load_file

    store, client, settings = _parts(request)
    loaded = load_file(_file(body.file, settings))
    runner = EvalRunner(store, client, settings)
    baseline = runner.results.run(body.baseline)["id"] if body.baseline else None
    if (body.candidate is None) != (body.against is None):
        raise ApiError(422, "give both 'candidate' and 'against'")
    compare = (body.candidate, body.against) if body.candidate and body.against else None
    versions = [compare[1], compare[0]] if compare else body.versions
    try:
        runner.check(loaded, versions, body.models)  # a broken reference is the request's fault: 422, nothing run
    except EvalReferenceError as exc:
        raise ApiError(422, str(exc)) from None
    select = Selection(
        tags=body.tags, patterns=body.cases, only=failing_cases(runner.results, body.filter_failing) if body.filter_failing else None,
        repeat=body.repeat, concurrency=body.max_concurrency, cache=body.cache,
    )
    run_id = new_run_id()
    work = runner.run(
        loaded, versions=None if compare else body.versions, models=body.models, baseline=baseline, run_id=run_id,
        select=select, compare=compare,
    )
    if body.wait:
        outcome = await work
        return JSONResponse({"run_id": run_id, "status": "done", "passed": outcome.passed, "summary": outcome.summary})
    task = asyncio.create_task(work)
    running: set[asyncio.Task[Any]] = request.app.state.__dict__.setdefault("eval_tasks", set())
    running.add(task)
    task.add_done_callback(running.discard)
    return {"run_id": run_id, "status": "running"}


@router.get("/runs", dependencies=_read)
def list_runs(
    request: Request, response: Response, name: str | None = Query(None, max_length=200),
    limit: int = Query(20, ge=1, le=500), cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
) -> list[dict[str, Any]]:
    """Eval runs, newest first; the next page in ``Link`` / ``Hub-Next-Cursor``."""
    store, _, _ = _parts(request)
    runs = EvalStore(store.engine).runs(name, limit + 1, start_after(cursor, (float | int, str)))
    link_next(request, response, next_cursor(runs, limit, lambda r: [r["created_at"], r["id"]]))
    return [{k: v for k, v in r.items() if k not in ("summary", "spec")} for r in runs]


@router.get("/runs/{run_id}", dependencies=_read)
def get_run(run_id: str, request: Request) -> dict[str, Any]:
    store, _, _ = _parts(request)
    return EvalStore(store.engine).run(run_id)


@router.get("/runs/{run_id}/results", dependencies=_read)
def get_results(
    run_id: str, request: Request, response: Response, variant: str | None = None,
    limit: int = Query(1000, ge=1, le=1000), cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
) -> list[dict[str, Any]]:
    """A run's results by variant, case and repeat; the next page in ``Link`` / ``Hub-Next-Cursor``."""
    store, _, _ = _parts(request)
    results = EvalStore(store.engine)
    after = start_after(cursor, (str, int, int, int))
    rows = results.results(results.run(run_id)["id"], variant, limit + 1, after)
    link_next(request, response, next_cursor(rows, limit, lambda r: [r["variant"], r["case_index"], r["repeat"], r["id"]]))
    return rows


@router.get("/runs/{run_id}/report.html", dependencies=_read, response_class=HTMLResponse)
def get_report(run_id: str, request: Request) -> HTMLResponse:
    from hub.evals.export import run_document, to_html

    store, _, _ = _parts(request)
    return HTMLResponse(to_html(run_document(EvalStore(store.engine), run_id)))


@router.post("/cases", dependencies=_run, status_code=201)
def add_case(body: CaseRequest, request: Request) -> dict[str, Any]:
    """Add an executed LLM call (by record id, or execution and step) as a new case."""
    from hub.evals import dataset
    from hub.evals.spec import load_file

    store, _, settings = _parts(request)
    path = _file(body.file, settings)
    call = dataset.find_call(store, body.call_id, body.execution_id, body.step)
    case = dataset.case_from_call(store, load_file(path), call, body.expected, body.id, body.tags, body.note)
    written = dataset.add_case(path, case)
    return {"case": case, "file": str(written), "call_id": call["id"]}


@router.get("/online", dependencies=_read)
def online_status(request: Request) -> list[dict[str, Any]]:
    """Attached online evals: the window's mean score and pass rate, the window before, alerting."""
    from hub.evals.online_store import OnlineStore

    store, _, _ = _parts(request)
    return OnlineStore(store.engine).status()


@router.get("/online/{name}/scores", dependencies=_read)
def online_scores(
    name: str, request: Request, response: Response, limit: int = Query(100, ge=1, le=1000), cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
) -> list[dict[str, Any]]:
    """The newest scores of one attached eval, each with its call record, execution and trace; the
    next page in ``Link`` / ``Hub-Next-Cursor``."""
    from hub.evals.online_store import OnlineStore

    store, _, _ = _parts(request)
    online = OnlineStore(store.engine)
    online.get(name)  # 404 for an eval that is not attached
    after = start_after(cursor, (int,))
    rows = online.scores(name, limit + 1, before=after[0] if after else None)
    link_next(request, response, next_cursor(rows, limit, lambda r: [r["id"]]))
    return rows


@router.get("/promotions", dependencies=_read)
def promotions(
    request: Request, response: Response, prompt: str | None = None,
    limit: int = Query(1000, ge=1, le=1000), cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
) -> list[dict[str, Any]]:
    """Label moves an eval run justified, oldest first; the next page in ``Link`` / ``Hub-Next-Cursor``."""
    store, _, _ = _parts(request)
    rows = EvalStore(store.engine).promotions(prompt, limit + 1, start_after(cursor, (int,)))
    link_next(request, response, next_cursor(rows, limit, lambda r: [r["id"]]))
    return rows
