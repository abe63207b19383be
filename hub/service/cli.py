"""``hub`` commands of the service: ``worker`` (and ``serve``, ``backfill``). Thin: parse, wire, run."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from hub.cli import user_errors
from hub.service.api_cli import log_level_option

if TYPE_CHECKING:
    from hub.settings import HubSettings


@click.command()
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="Executions run at once (default HUB_MAX_CONCURRENCY, 64).")
@click.option("--queue", "queue_name", default=None, help="arq queue name (default HUB_QUEUE_NAME or hub:queue).")
@click.option("--sweep-interval", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds between sweeps for interrupted executions.")
@click.option("--poll-delay", type=click.FloatRange(min=0, min_open=True), default=0.5, show_default=True,
              help="Fallback poll of the queue; submits wake workers at once.")
@click.option("--grace", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="On SIGTERM, seconds to let running executions finish before handing them over.")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None, envvar="HUB_WORKER_METRICS_PORT",
              help="Serve Prometheus metrics of this worker (its executions and step durations) on this port.")
@log_level_option
@user_errors
def worker(concurrency: int | None, queue_name: str | None, sweep_interval: float, poll_delay: float,
           grace: float, burst: bool, metrics_port: int | None, log_level: str) -> None:
    """Run queued executions from Redis (HUB_REDIS_URL); start as many as you like."""
    from hub.cli import settings as process_settings
    from hub.errors import HubError
    from hub.service.health import ALIVE_FILE
    from hub.service.runtime import build_engine, one_malloc_arena
    from hub.service.worker import WorkerOptions, serve_worker
    from hub.telemetry.jsonlog import configure_logging

    one_malloc_arena()  # before any thread starts
    settings = process_settings()
    configure_logging(log_level, settings.log_format, "worker")
    if not settings.redis_url:
        raise HubError("hub worker needs Redis: set HUB_REDIS_URL (e.g. redis://localhost:6379/0)")
    engine = build_engine(worker_settings(settings), queue=queue_name)
    if metrics_port:
        from hub.telemetry.prometheus import HubMetrics, serve_metrics

        serve_metrics(HubMetrics(engine).attach(), metrics_port)
    with contextlib.suppress(OSError):  # the health file's folder; not writable: logged by the worker
        settings.home.mkdir(parents=True, exist_ok=True)
    options = WorkerOptions(
        concurrency=concurrency or settings.max_concurrency, sweep_interval=sweep_interval,
        poll_delay=poll_delay, grace=grace, burst=burst, alive_file=settings.home / ALIVE_FILE,
    )
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve_worker(engine, options, hard_exit=True))


@click.command()
@click.option("--worker", "worker_only", is_flag=True,
              help="Check the worker of this HUB_HOME: Redis answered its poll of the queue within --max-age.")
@click.option("--url", default=None,
              help="Check the API: this URL answers 200 (default http://127.0.0.1:8080/health; /ready also "
                   "checks the database and Redis).")
@click.option("--max-age", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds since a worker's last poll that still count as healthy (default 30).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
              help="Seconds the API may take to answer.")
def health(worker_only: bool, url: str | None, max_age: float | None, timeout: float) -> None:
    """Exit 0 when the hub process here is healthy, 1 when not (for container health checks).

    A worker serves no HTTP: it keeps HUB_HOME/worker.alive fresh while its polls of the queue
    succeed. Without --worker or --url, the worker is checked when that file exists (a worker runs
    with this HUB_HOME, as in a worker container), else the API on http://127.0.0.1:8080.
    """
    from hub.cli import settings
    from hub.errors import InvalidSettings
    from hub.service.health import ALIVE_FILE, ALIVE_MAX_AGE, alive_age

    try:
        path = settings().home / ALIVE_FILE
    except InvalidSettings as exc:  # a setting in the environment that does not validate (exit 1, not a traceback)
        _verdict(False, "the hub's settings cannot be read: " + "; ".join(exc.problems))
        return
    if worker_only or (url is None and path.exists()):
        limit = max_age if max_age is not None else ALIVE_MAX_AGE
        age = alive_age(path)
        if age is None:
            _verdict(False, f"no worker runs with this HUB_HOME ({path} does not exist)")
        elif age > limit:
            _verdict(False, f"the worker's last answered poll of the queue was {age:.0f}s ago (limit {limit:g}s)")
        else:
            _verdict(True, f"worker: last answered poll of the queue {age:.1f}s ago")
        return
    import urllib.error
    import urllib.request

    target = url or "http://127.0.0.1:8080/health"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        alone = "" if url else f" (and no worker runs with this HUB_HOME: no {path})"
        _verdict(False, f"the API at {target} does not answer: {exc}{alone}")
        return
    _verdict(status == 200, f"API: {target} answered {status}")


def _verdict(ok: bool, message: str) -> None:
    click.echo(("ok: " if ok else "unhealthy: ") + message)
    if not ok:
        sys.exit(1)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (as uvicorn picks it for ``hub serve``), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


# the API server and its clients live in hub.service.api_cli (part A); re-exported for hub.cli
from hub.service.api_cli import deploy, keys, serve  # noqa: E402, F401


def worker_settings(settings: HubSettings) -> HubSettings:
    """A worker's defaults: litellm (~100 MiB, seconds to import) is imported when a step first
    needs it, not at start-up (``HUB_LLM_PRELOAD=true`` restores that): many workers never call a
    model through it, and the first call imports it off the event loop."""
    from hub.llm.settings import LLMSettings

    llm = settings.section(LLMSettings)
    if llm.preload is None:
        settings.with_sections(llm.model_copy(update={"preload": False}))
    return settings


@click.command()
@click.argument("flow")
@click.option("--from", "start", required=True, metavar="DATE", help="ISO date-time, e.g. 2024-05-01T00:00 (UTC unless an offset is given).")
@click.option("--to", "end", required=True, metavar="DATE", help="ISO date-time, inclusive.")
@click.option("--trigger", "trigger_id", default=None, help="The schedule's id, when the flow has several.")
@click.option("--limit", default=1000, show_default=True, help="Refuse to start more executions than this.")
@user_errors
def backfill(flow: str, start: str, end: str, trigger_id: str | None, limit: int) -> None:
    """Start FLOW (namespace.flow_id) once per cron time of its schedule in [--from, --to].

    Times that already ran are not started again. With HUB_REDIS_URL the executions go to the
    workers; without it they run here.
    """
    from datetime import datetime

    from hub.cli import settings
    from hub.service.runtime import build_engine, close_engine, is_distributed
    from hub.triggers.schedule import backfill as run_backfill

    def moment(value: str, option: str) -> datetime:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an ISO date-time such as 2024-05-01T00:00", param_hint=option) from None

    first, last = moment(start, "--from"), moment(end, "--to")
    engine = build_engine(settings())

    async def go() -> list[dict]:
        try:
            rows = await run_backfill(engine, flow, first, last, trigger_id, limit)
            if not is_distributed(engine):
                await engine.queue.drain()  # type: ignore[attr-defined]
            return rows
        finally:
            await close_engine(engine)

    rows = asyncio.run(go())
    for row in rows:
        click.echo(f"{row['date']}  {row['execution_id']}  {'started' if row['created'] else 'already ran'}")
    click.echo(f"{sum(r['created'] for r in rows)} started, {sum(not r['created'] for r in rows)} already ran")
