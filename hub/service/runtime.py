"""Wiring of one hub process: the store, the engine and the queue, built from settings.

``hub serve`` and ``hub worker`` both call :func:`build_engine`; the only difference between the
embedded and the scaled-out deployment is the queue it picks: arq on Redis when ``HUB_REDIS_URL``
is set, the in-process asyncio queue otherwise.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Any

from hub.core.plugins import PluginError, Plugins, default_plugins
from hub.engine.queue import LocalQueue
from hub.engine.runner import Engine
from hub.service.queue_arq import ArqQueue
from hub.settings import HubSettings, load_settings
from hub.store.store import Store

log = logging.getLogger(__name__)


def build_engine(
    settings: HubSettings | None = None,
    *,
    store: Store | None = None,
    queue: str | None = None,
    **engine_kwargs: Any,
) -> Engine:
    """The engine for this process: store from settings, arq queue when ``redis_url`` is set.
    Without ``settings``, the process's are read and checked here (:func:`hub.settings.load_settings`)."""
    settings = settings if settings is not None else load_settings()
    engine = Engine(store or Store.from_settings(settings), settings, **engine_kwargs)
    if settings.redis_url:
        engine.queue = ArqQueue(settings.redis_url, queue or settings.queue_name)
    from hub.telemetry.setup import install, instrument_httpx_when_imported, tracing_enabled

    install_plugins(engine)  # services (approvals: gates use this engine's clock, hear kills), sweepers, middleware
    if settings.log_format == "json":
        from hub.telemetry.jsonlog import mark_executions

        mark_executions(engine)  # every log line names its execution
    if tracing_enabled():
        install(engine)
        instrument_httpx_when_imported()
    return engine


def install_plugins(engine: Engine, plugins: Plugins | None = None) -> None:
    """Give ``engine`` what the plugins contribute to a process: services (built once, kept in
    ``engine.services``; one whose install returns None has nothing to keep in this process),
    sweepers (run when interrupted work is picked up) and middleware. A contribution that fails
    is logged with its plugin's name; the rest are installed."""
    plugins = plugins or default_plugins()
    for contribution in plugins.all("service"):
        if contribution.name in engine.services:
            continue
        try:
            service = contribution.ref.load()(engine)
        except Exception:
            log.exception("plugin %s: service %r not installed", contribution.ref.plugin, contribution.name)
            continue
        if service is not None:
            engine.services.setdefault(contribution.name, service)
    for contribution in plugins.all("sweeper"):
        try:
            engine.sweepers.append(_Sweeper(contribution.ref.load(), engine))
        except PluginError as exc:
            log.error("sweeper not installed: %s", exc)
    for contribution in plugins.all("middleware"):
        try:
            engine.middleware.append(contribution.ref.load()(engine))
        except Exception:
            log.exception("plugin %s: middleware %s not installed", contribution.ref.plugin, contribution.name)


class _Sweeper:
    """A plugin's ``async def sweep(engine)`` as the engine's sweepers are called (no arguments,
    a list of execution ids back)."""

    def __init__(self, sweep: Any, engine: Engine):
        self.sweep = sweep
        self.engine = engine

    async def __call__(self) -> list[str]:
        result = await self.sweep(self.engine)
        return list(result) if isinstance(result, list | tuple) else []

    def __repr__(self) -> str:
        return f"sweeper {getattr(self.sweep, '__qualname__', self.sweep)!r}"


def is_distributed(engine: Engine) -> bool:
    return isinstance(engine.queue, ArqQueue)


def settle_heap() -> None:
    """Move what start-up built (modules, models, routes, the flows) out of the garbage
    collector's reach. It lives as long as the process, and every full collection would walk it
    again: under load those passes were the server's p99 (enrich-llm p99 183 -> 84 ms)."""
    gc.collect()
    gc.freeze()


M_ARENA_MAX = -8  # glibc's mallopt parameter


def one_malloc_arena() -> bool:
    """Have every thread of this process allocate from one malloc arena (glibc gives each thread
    that allocates one of its own, up to eight per core). Each arena of its own kept ~0.3 MiB more
    resident: ~2 MiB of a worker under load. The price is contention where threads allocate
    without the GIL at once (psycopg's libpq in the database threads, native code in a python
    step); a worker's Python code takes turns under the GIL anyway. Called before any thread
    starts; ``MALLOC_ARENA_MAX`` in the environment is left to decide (set it to trade the memory
    back for that concurrency). False where there is no such knob."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, 1))


async def close_engine(engine: Engine) -> None:
    """Close the queue (in-process: cancel what runs), the model client's connections and the store."""
    queue = engine.queue
    if isinstance(queue, ArqQueue | LocalQueue):
        await queue.close()
    if "hub.llm.client" in sys.modules:  # a step called a model: close its connections
        from hub.llm.client import close_clients
        from hub.llm.services import LLM_CLIENT

        await close_clients(engine.services.get(LLM_CLIENT.name))
    from hub.telemetry.setup import shutdown

    shutdown()  # flush spans still buffered
    engine.store.close()
