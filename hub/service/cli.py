"""``hub`` commands of the service: ``worker`` (and ``serve``, ``backfill``). Thin: parse, wire, run."""

from __future__ import annotations

import asyncio
import logging

import click

from hub.cli import user_errors


@click.command()
@click.option("--concurrency", type=int, default=None, help="Executions run at once (default HUB_MAX_CONCURRENCY, 64).")
@click.option("--queue", "queue_name", default=None, help="arq queue name (default HUB_QUEUE_NAME or hub:queue).")
@click.option("--sweep-interval", type=float, default=10.0, show_default=True,
              help="Seconds between sweeps for interrupted executions.")
@click.option("--poll-delay", type=float, default=0.5, show_default=True,
              help="Fallback poll of the queue; submits wake workers at once.")
@click.option("--grace", type=float, default=30.0, show_default=True,
              help="On SIGTERM, seconds to let running executions finish before handing them over.")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--log-level", default="info", show_default=True)
@user_errors
def worker(concurrency: int | None, queue_name: str | None, sweep_interval: float, poll_delay: float,
           grace: float, burst: bool, log_level: str) -> None:
    """Run queued executions from Redis (HUB_REDIS_URL); start as many as you like."""
    from hub.errors import HubError
    from hub.service.runtime import build_engine
    from hub.service.worker import WorkerOptions, serve_worker
    from hub.settings import HubSettings

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = HubSettings()
    if not settings.redis_url:
        raise HubError("hub worker needs Redis: set HUB_REDIS_URL (e.g. redis://localhost:6379/0)")
    engine = build_engine(settings, queue=queue_name)
    options = WorkerOptions(
        concurrency=concurrency or settings.max_concurrency, sweep_interval=sweep_interval,
        poll_delay=poll_delay, grace=grace, burst=burst,
    )
    asyncio.run(serve_worker(engine, options, hard_exit=True))


# the API server and its clients live in hub.service.api_cli (part A); re-exported for hub.cli
from hub.service.api_cli import deploy, keys, serve  # noqa: E402, F401
