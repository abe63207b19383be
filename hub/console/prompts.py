"""Prompt and eval pages: versions with diffs and labels, a label move (directly, or gated by an
eval run), eval runs and one run's matrix (cases × prompt versions × models) against its baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from hub.api.errors import ApiError
from hub.console.quality import latest_comparison, online_panels
from hub.console.render import render
from hub.console.session import ConsoleRoute, Viewer, form, hub_of, viewer
from hub.errors import HubError
from hub.evals.results import EvalStore
from hub.prompts.registry import PromptRegistry

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def registry_of(request: Request) -> PromptRegistry:
    engine = hub_of(request).engine
    return PromptRegistry(engine.store.engine, engine.settings.prompts_dir)


def reg_settings(request: Request) -> Any:
    """The process's settings, as the engine holds them."""
    return hub_of(request).engine.settings


def eval_files_for(name: str, folder: Path) -> list[str]:
    """Eval files (relative to the evals folder, ``HUB_EVALS_DIR``) whose target is prompt ``name``."""
    from hub.evals.spec import load_file

    root = folder.resolve()
    out = []
    for path in sorted(root.glob("**/*.y*ml")) if root.is_dir() else []:
        try:
            if load_file(path).spec.target.prompt == name:
                out.append(str(path.relative_to(root)))
        except Exception:  # an eval file that does not load is not offered
            continue
    return out


@router.get("/prompts")
def prompts_list(request: Request, who: Viewer = Depends(viewer)) -> Response:
    return render(request, who, "prompts.html", title="Prompts", prompts=registry_of(request).names())


@router.get("/prompts/{name}")
def prompt_page(request: Request, name: str, a: str | None = None, b: str | None = None,
                notice: str | None = None, who: Viewer = Depends(viewer)) -> Response:
    """Versions, labels, the source of version ``b`` and the diff ``a`` → ``b`` (default: the two newest)."""
    reg = registry_of(request)
    versions = reg.versions(name)
    labels = reg.labels(name)
    numbers = [v["version"] for v in versions]
    newest = max(numbers)
    to = reg.version_of(name, b) if b else newest
    since = reg.version_of(name, a) if a else max([n for n in numbers if n < to], default=to)
    shown = reg.get(name, to)
    return render(
        request, who, "prompt.html", title=f"Prompt {name}", name=name, versions=versions, labels=labels,
        by_version={n: sorted(k for k, v in labels.items() if v == n) for n in numbers}, a=since, b=to,
        diff=reg.diff(name, since, to) if since != to else "", shown=shown, history=reg.history(name),
        promotions=EvalStore(reg.engine).promotions(name), eval_files=eval_files_for(name, reg_settings(request).evals_dir), notice=notice,
        online=online_panels(reg.engine, name), compared=latest_comparison(reg.engine, name),
    )


@router.post("/prompts/{name}/label")
async def move_label(request: Request, name: str, who: Viewer = Depends(viewer)) -> Response:
    """Point a label at a version (admin); with an eval file, only when that version passes it."""
    fields = await form(request, who)
    who.need("admin")
    label = fields.get("label", "").strip()
    version = fields.get("version", "").strip()
    if not label or not version:
        raise ApiError(422, "give the label and the version it should point at")
    reg = registry_of(request)
    eval_file = fields.get("eval", "").strip()
    if not eval_file:
        try:
            reg.set_label(name, label, version)
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        return RedirectResponse(f"/prompts/{name}?notice=moved", status_code=303)
    from hub.api.evals import _file
    from hub.evals.gate import PromotionRefused, promote_gated
    from hub.evals.runner import EvalRunner
    from hub.evals.spec import load_file
    from hub.llm.client import default_client
    from hub.llm.services import LLM_CLIENT
    from hub.llm.settings import LLMSettings

    engine = hub_of(request).engine
    client = engine.services.get(LLM_CLIENT.name) or default_client(engine.settings.section(LLMSettings))
    runner = EvalRunner(engine.store, client, engine.settings)
    try:
        done = await promote_gated(runner, load_file(_file(eval_file, engine.settings)), name, version, label)
    except PromotionRefused as refused:
        return RedirectResponse(f"/evals/{refused.run_id}?refused={label}", status_code=303)
    except HubError as exc:
        raise ApiError(422, str(exc)) from None
    return RedirectResponse(f"/evals/{done['run_id']}?promoted={label}", status_code=303)


@router.get("/evals")
def eval_runs(request: Request, name: str | None = None, who: Viewer = Depends(viewer)) -> Response:
    runs = EvalStore(hub_of(request).engine.store.engine).runs(name or None, 100)
    return render(request, who, "evals.html", title="Eval runs", runs=runs, name=name or "")


def matrix(run: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Cases × variants: each cell the case's runs in that variant (assertions, output, cost,
    latency), marked ``regressed`` or ``fixed`` against the baseline."""
    summary = run.get("summary") or {}
    variants = summary.get("variants") or [{"key": k} for k in dict.fromkeys(r["variant"] for r in results)]
    baseline = summary.get("baseline") or {}
    moved: dict[tuple[str, str], str] = {}
    for d in baseline.get("variants", []):
        for case in d.get("regressions") or []:
            moved[(d["variant"], case)] = "regressed"
        for case in d.get("fixed") or []:
            moved[(d["variant"], case)] = "fixed"
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    cases: dict[str, dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: (r["case_index"], r["repeat"])):
        cases.setdefault(r["case_id"], {"id": r["case_id"], "input": r["input"], "expected": r["expected"]})
        cells.setdefault((r["case_id"], r["variant"]), []).append(r)
    return {"variants": variants, "cases": list(cases.values()), "cells": cells, "moved": moved,
            "baseline": baseline}


@router.get("/evals/{run_id}")
def eval_run(request: Request, run_id: str, promoted: str | None = None, refused: str | None = None,
             who: Viewer = Depends(viewer)) -> Response:
    store = EvalStore(hub_of(request).engine.store.engine)
    run = store.run(run_id)
    results = store.results(run["id"])
    from hub.evals.report import missed, variant_title

    return render(request, who, "eval_run.html", title=f"Eval run {run['id']}", run=run, m=matrix(run, results),
                  variant_title=variant_title, missed=missed, promoted=promoted, refused=refused)
