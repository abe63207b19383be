"""The FastAPI application: routers under ``/v1``, errors at the edge, the service's lifespan.

    app = create_app()                      # engine from HUB_* settings (arq queue if HUB_REDIS_URL)
    app = create_app(engine, auth="open")   # tests: an engine you built
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import text

from hub.api import enrich, errors, executions, flows, guard, keys, webhooks
from hub.api.auth import require
from hub.api.context import Hub, Waiter
from hub.api.enrich_route import EnrichRoute
from hub.api.limits import build_limits
from hub.api.models import Health
from hub.api.models import errors as errors_doc
from hub.api.settings import ApiSettings
from hub.engine.runner import Engine
from hub.errors import FlowError
from hub.settings import HubSettings, load_settings
from hub.store.api_store import ApiStore

log = logging.getLogger(__name__)

def deploy_folder(hub: Hub, folder: Path) -> tuple[int, list[str]]:
    """Save every valid flow in ``folder`` as the API saves one (a flow disabled through the API
    stays disabled on a new revision); returns (count saved, problems of the invalid ones)."""
    from hub.flow.loader import flow_files

    saved, problems = 0, []
    if not folder.is_dir():
        return 0, []
    for path in flow_files(folder):
        try:
            flows.save(hub, hub.engine.catalog.loader.load_file(path))
            saved += 1
        except FlowError as exc:
            problems.append(str(exc))
    return saved, problems


def _plugin_routers() -> list[tuple[APIRouter, str]]:
    """Every router the plugins contribute, with its prefix; a router that cannot be imported
    is logged with its plugin's name and left out (the rest of the API still serves)."""
    from hub.core.plugins import PluginError, default_plugins

    out = []
    for contribution in default_plugins().all("router"):
        try:
            router = contribution.ref.load()
        except PluginError as exc:
            log.error("router not mounted: %s", exc)
            continue
        out.append((router, str(contribution.options.get("prefix", "/v1"))))
    return out


async def _start_plugins(engine: Engine) -> list[Any]:
    """Start every plugin's lifespan hook (the trigger service, ...); returns their stops."""
    from hub.core.plugins import default_plugins

    stops = []
    for contribution in default_plugins().all("lifespan"):
        try:
            stop = await contribution.ref.load()(engine)
        except Exception:
            log.exception("plugin %s: %s did not start", contribution.ref.plugin, contribution.name)
            continue
        if stop is not None:
            stops.append(stop)
    return stops


class _Lifespan:
    """The service's start-up and shutdown around the app (see :func:`create_app`)."""

    def __init__(self, engine: Engine | None, hub_settings: HubSettings, api_settings: ApiSettings, auth: str,
                 flows_dir: Path | None, background: bool):
        self.engine, self.hub_settings, self.api_settings = engine, hub_settings, api_settings
        self.auth, self.flows_dir, self.background = auth, flows_dir, background

    @contextlib.asynccontextmanager
    async def __call__(self, app: FastAPI) -> AsyncIterator[None]:
        owned = self.engine is None
        eng = self._engine()
        hub = self._hub(eng)
        app.state.hub = hub
        tasks: list[asyncio.Task[Any]] = []
        closers: list[Any] = []
        if self.flows_dir is not None:
            self._deploy(hub, self.flows_dir)
        if self.background:
            resumed = await eng.resume_interrupted(run_now=False)
            if resumed:
                log.info("picked up %d interrupted execution(s)", len(resumed))
            tasks.append(asyncio.create_task(eng.heartbeat_loop(), name="heartbeat"))
            closers.extend(await _start_plugins(eng))
        if owned:  # a server process (hub serve), not an app inside tests
            from hub.service.runtime import settle_heap

            settle_heap()
        try:
            yield
        finally:
            await self._stop(eng, hub, tasks, closers, owned)

    def _engine(self) -> Engine:
        if self.engine is not None:
            return self.engine
        from hub.service.runtime import build_engine

        return build_engine(self.hub_settings)

    def _hub(self, eng: Engine) -> Hub:
        limiter, cache = build_limits(self.api_settings, eng)
        hub = Hub(
            engine=eng, api_store=ApiStore(eng.store, self.api_settings.flow_cache_ttl), settings=self.api_settings,
            waiter=Waiter(eng), limiter=limiter, cache=cache, auth=self.auth,
        )
        from hub.telemetry.prometheus import HubMetrics

        hub.metrics = HubMetrics(eng).with_database().attach()
        return hub

    @staticmethod
    def _deploy(hub: Hub, folder: Path) -> None:
        saved, problems = deploy_folder(hub, folder)
        log.info("deployed %d flow(s) from %s", saved, folder)
        for problem in problems:
            log.warning("skipped an invalid flow: %s", problem)

    @staticmethod
    async def _stop(eng: Engine, hub: Hub, tasks: list[asyncio.Task[Any]], closers: list[Any], owned: bool) -> None:
        for closer in closers:
            result = closer() if callable(closer) else None
            if asyncio.iscoroutine(result):
                await result
        for task in tasks + list(hub.background):
            task.cancel()
        await asyncio.gather(*tasks, *hub.background, return_exceptions=True)
        hub.waiter.detach()
        await hub.close()
        if owned:
            from hub.service.runtime import close_engine

            await close_engine(eng)


DESCRIPTION = (
    "Every endpoint but `/health`, `/ready` and signed webhooks needs an API key "
    "(`Authorization: Bearer <key>` or `X-API-Key`). Every error is an RFC 9457 problem "
    "(`application/problem+json`): `type`, `title`, `status`, `detail`, `instance`, and the hub's "
    '`code` and `details` (the former body `{"error": {"type", "message", "details"}}` is kept as '
    "the extension `error`). Lists page with the `next` cursor."
)


def create_app(
    engine: Engine | None = None,
    *,
    settings: ApiSettings | None = None,
    hub_settings: HubSettings | None = None,
    auth: str = "auto",
    flows_dir: Path | None = None,
    background: bool = True,
) -> FastAPI:
    """The API. Without ``engine`` one is built at start-up from ``hub_settings`` (the process's
    settings; default: read from the environment) and closed at the end. ``settings``: the API's
    section (default: that of ``hub_settings`` or the engine's). ``auth``: ``auto`` (keys required
    once one exists), ``required`` or ``open``. ``background``: resume interrupted executions,
    heartbeat and triggers in the lifespan."""
    if hub_settings is None:
        hub_settings = engine.settings if engine is not None else load_settings()
    api_settings = settings if settings is not None else hub_settings.section(ApiSettings)
    app = FastAPI(
        title="hub",
        version="1",
        summary="YAML flows with LLM steps, approvals and connectors, run durably.",
        description=DESCRIPTION,
        lifespan=_Lifespan(engine, hub_settings, api_settings, auth, flows_dir, background),
        docs_url=None,  # the console serves /docs and /redoc from packaged files (no CDN)
        redoc_url=None,
        dependencies=[Depends(guard.storable_request)],
    )
    app.add_middleware(guard.BodyLimit, limit=api_settings.max_body)
    errors.install(app)
    errors.document_problems(app)
    from hub.telemetry.setup import instrument_app, tracing_enabled

    if tracing_enabled():
        instrument_app(app)

    v1 = APIRouter(prefix="/v1")
    for router in (flows.router, executions.starts, executions.router, webhooks.router, enrich.router, keys.router):
        v1.include_router(router)
    app.include_router(v1)
    app.router.routes.insert(0, EnrichRoute(v1.prefix, app.router))  # before the routers: see its module
    for router, prefix in _plugin_routers():
        app.include_router(router, prefix=prefix)
    _health_routes(app, api_settings)
    return app


def _health_routes(app: FastAPI, api_settings: ApiSettings) -> None:
    """``/health`` (liveness), ``/metrics`` (Prometheus) and ``/ready`` (the database and Redis)."""

    @app.get("/health", response_model=Health, tags=["health"])
    def health() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    metrics_auth = [] if api_settings.metrics_public else [Depends(require("read"))]

    @app.get("/metrics", tags=["health"], dependencies=metrics_auth, response_class=PlainTextResponse,
             responses=errors_doc(401, 403))
    async def metrics() -> Response:
        """Prometheus metrics (text format): executions by state, queue depth, step durations, LLM
        tokens and cost. Needs the `read` scope unless HUB_API_METRICS_PUBLIC=true."""
        from hub.telemetry.prometheus import CONTENT_TYPE

        hub: Hub = app.state.hub
        return Response(await hub.metrics.collect(), media_type=CONTENT_TYPE)

    @app.get("/ready", response_model=Health, tags=["health"], responses={503: {"model": Health}})
    async def ready() -> Any:
        """Readiness: the database (and Redis, when configured) answer."""
        hub: Hub = app.state.hub
        checks: dict[str, str] = {}
        try:
            with hub.engine.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        pool = getattr(hub.engine.queue, "pool", None)
        if pool is not None:
            try:
                redis = await asyncio.wait_for(pool(), 2.0)
                await asyncio.wait_for(redis.ping(), 2.0)
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        body = Health(status="ok" if ok else "unavailable", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
