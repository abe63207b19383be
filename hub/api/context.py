"""What the routers share, built once in the app factory and reached through ``request.app.state``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from hub.api.limits import Limiter, MemoryCache, ResponseCache
from hub.api.settings import ApiSettings
from hub.engine.runner import Engine
from hub.engine.states import TERMINAL, State
from hub.store.api_store import ApiStore

__all__ = ["ApiSettings", "Hub", "Waiter", "get_hub"]

ENDED = frozenset({*TERMINAL, State.PAUSED})


class Waiter:
    """Waits for executions to end (or pause): engine events when they run in this process, the
    store when a worker elsewhere runs them."""

    def __init__(self, engine: Engine, poll: float = 0.2):
        self.engine = engine
        self.poll = poll
        self._futures: dict[str, list[asyncio.Future[str]]] = {}
        engine.listeners.append(self._on_event)

    def detach(self) -> None:
        """Stop listening to the engine's events (the app is shutting down)."""
        if self._on_event in self.engine.listeners:
            self.engine.listeners.remove(self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") != "execution" or event.get("state") not in ENDED:
            return
        for future in self._futures.pop(event["execution_id"], []):
            if not future.done():
                future.set_result(event["state"])

    async def wait(self, execution_id: str, timeout: float) -> dict[str, Any] | None:
        """The execution row once it ended, or None after ``timeout`` seconds."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._futures.setdefault(execution_id, []).append(future)
        deadline = time.monotonic() + timeout
        try:
            while True:
                row = self.engine.store.get_execution(execution_id)
                if row["state"] in ENDED:
                    return row
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                try:
                    async with asyncio.timeout(min(self.poll, left)):
                        await asyncio.shield(future)
                except TimeoutError:
                    continue
        finally:
            waiting = self._futures.get(execution_id)
            if waiting and future in waiting:
                waiting.remove(future)
                if not waiting:
                    self._futures.pop(execution_id, None)


@dataclass
class Hub:
    """The service's shared objects."""

    engine: Engine
    api_store: ApiStore
    settings: ApiSettings
    waiter: Waiter
    limiter: Limiter
    cache: ResponseCache = field(default_factory=MemoryCache)
    auth: str = "auto"  # auto: on once a key exists; required; open (localhost only)
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    metrics: Any = None  # hub.telemetry.prometheus.HubMetrics, made in the lifespan
    _keys_seen: bool = False
    _keys_checked: float = 0.0

    def keys_configured(self) -> bool:
        """Whether auth is on: a stored key (ever), or a bootstrap key. Rechecked every 2 s until on."""
        if self.auth == "required" or self.settings.admin_key or self._keys_seen:
            return True
        if self.auth == "open":
            return False
        now = time.monotonic()
        if now - self._keys_checked > 2.0:
            self._keys_checked = now
            self._keys_seen = self.api_store.any_keys()
        return self._keys_seen

    async def close(self) -> None:
        """Release the limiter's and cache's connections (Redis), if any."""
        await self.limiter.close()
        await self.cache.close()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task


async def get_hub(request: Request) -> Hub:  # async: FastAPI would run a plain def in a thread
    return request.app.state.hub  # type: ignore[no-any-return]
