"""The enrichment API's rate limit and response cache: in this process, or shared through Redis.

One interface (:class:`Limiter`, :class:`ResponseCache`), two implementations each, chosen in
:func:`build_limits` from the settings:

- embedded (no ``HUB_REDIS_URL``): :class:`MemoryRateLimiter` and :class:`MemoryCache`, per process;
- scaled out (``HUB_REDIS_URL`` set): :class:`RedisRateLimiter` and :class:`RedisCache`, so every API
  replica on the same Redis counts against the same bucket and sees the same cached responses.
  Keys start with the deployment's queue name (``HUB_QUEUE_NAME``, default ``hub:queue``), so two
  hubs on one Redis do not share buckets or entries.

When Redis does not answer (refused, timed out after ``HUB_API_REDIS_TIMEOUT``, any Redis error):

- the rate limit falls back to this replica's own in-memory bucket (same rate and burst, so the
  limit holds per replica until Redis is back);
- the cache misses: a lookup finds nothing and a store is dropped, so the flow just runs;
- a warning is logged when it starts (and again at most once a minute while it lasts), and one
  when Redis answers again; for :attr:`RedisLink.retry_interval` seconds after a failure Redis
  is not tried, so requests do not each wait for the timeout.

No enrichment call fails because of Redis: the request is limited locally or runs uncached.
Nothing here imports ``redis`` unless a Redis implementation is built.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from hub.net import redact_url

if TYPE_CHECKING:
    from hub.engine.runner import Engine

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Limiter(Protocol):
    """A rate limit per caller."""

    rate: float

    async def check(self, who: str, cost: float = 1.0) -> float:
        """0 when allowed (tokens taken), else the seconds to wait before trying again."""
        ...

    async def close(self) -> None: ...


class ResponseCache(Protocol):
    """Enrichment responses by key, each kept ``ttl`` seconds. Values are JSON-compatible."""

    async def get(self, key: str) -> Any | None: ...

    async def put(self, key: str, value: Any, ttl: float) -> None: ...

    async def close(self) -> None: ...


def bucket_size(rate: float, burst: int) -> float:
    """``burst``, or twice the rate (at least 1) when it is 0."""
    return float(burst or max(1, int(rate * 2)))


class MemoryRateLimiter:
    """A token bucket per caller, in this process: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int = 0, clock: Clock = time.monotonic):
        self.rate = rate
        self.burst = bucket_size(rate, burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, who: str, cost: float = 1.0) -> float:
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, last = self._buckets.get(who, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= cost:
            self._buckets[who] = (tokens - cost, now)
            return 0.0
        self._buckets[who] = (tokens, now)
        return (cost - tokens) / self.rate

    async def check(self, who: str, cost: float = 1.0) -> float:
        return self.take(who, cost)

    async def close(self) -> None:
        return None


class MemoryCache:
    """Responses in this process, at most ``size`` (least recently used dropped first)."""

    def __init__(self, size: int = 10_000, clock: Clock = time.monotonic):
        self.size = size
        self.clock = clock
        self._items: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    async def get(self, key: str) -> Any | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self.clock():
            self._items.pop(key, None)
            return None
        self._items.move_to_end(key)
        return value

    async def put(self, key: str, value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        self._items[key] = (self.clock() + ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    async def close(self) -> None:
        return None


class RedisLink:
    """The Redis client the shared limiter and cache use, and the record of Redis being down.

    The client has its own small pool with short timeouts and no retries (a check must answer
    fast or count as failed). It connects on first use, never at construction."""

    retry_interval = 5.0  # seconds Redis is not tried after a failure
    warn_interval = 60.0  # while Redis stays down, the warning is repeated at most this often

    def __init__(self, url: str, timeout: float = 0.5, clock: Clock = time.monotonic):
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        self.url = url
        self.clock = clock
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry_on_timeout=False, retry=Retry(NoBackoff(), 0),
        )
        self.errors: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
        self.down = False
        self._skip_until = -math.inf
        self._warned_at = -math.inf
        self._closed = False

    def usable(self) -> bool:
        """False for :attr:`retry_interval` seconds after a failure."""
        return self.clock() >= self._skip_until

    def failed(self, what: str, fallback: str, exc: BaseException) -> None:
        now = self.clock()
        self._skip_until = now + self.retry_interval
        if not self.down or now - self._warned_at >= self.warn_interval:
            log.warning(
                "Redis at %s is unreachable for the enrichment %s (%s: %s); %s. Retrying every %gs.",
                redact_url(self.url), what, type(exc).__name__, exc, fallback, self.retry_interval,
            )
            self._warned_at = now
        self.down = True

    def answered(self) -> None:
        if self.down:
            self.down = False
            log.warning("Redis at %s answers again: enrichment rate limit and cache are shared again",
                        redact_url(self.url))

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.client.aclose()


# A token bucket, the same arithmetic as MemoryRateLimiter.take, in one atomic step.
# KEYS[1]: the bucket (a hash: tokens, ts). ARGV: rate, burst, cost[, now].
# Time is the Redis server's (one clock for every replica) unless ``now`` is given (tests).
# The key expires once the bucket would be full again, which is the same as no key.
TOKEN_BUCKET = """
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = burst
  last = now
end
if now < last then now = last end
tokens = math.min(burst, tokens + (now - last) * rate)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return string.format('%.17g', wait)
"""


class RedisRateLimiter:
    """The token bucket of :class:`MemoryRateLimiter` kept in Redis, one key per caller, shared by
    every replica; one round trip per check (a Lua script). ``clock``: pass time instead of using
    the Redis server's (tests)."""

    def __init__(self, link: RedisLink, prefix: str, rate: float, burst: int = 0, clock: Clock | None = None):
        self.link = link
        self.prefix = prefix
        self.rate = rate
        self.burst = bucket_size(rate, burst)
        self.clock = clock
        self.fallback = MemoryRateLimiter(rate, burst, clock or time.monotonic)
        self._script = link.client.register_script(TOKEN_BUCKET)

    def key(self, who: str) -> str:
        return f"{self.prefix}:enrich:rate:{who}"

    async def check(self, who: str, cost: float = 1.0) -> float:
        if self.rate <= 0:
            return 0.0
        if self.link.usable():
            args = [repr(float(self.rate)), repr(self.burst), repr(float(cost))]
            if self.clock is not None:
                args.append(repr(float(self.clock())))
            try:
                wait = float(await self._script(keys=[self.key(who)], args=args))
            except self.link.errors as exc:
                self.link.failed("rate limit", "each replica limits with its own bucket meanwhile", exc)
            else:
                self.link.answered()
                return wait
        return self.fallback.take(who, cost)

    async def close(self) -> None:
        await self.link.close()


class RedisCache:
    """Responses as JSON strings in Redis, each key expiring after its TTL (``SET ... PX``)."""

    def __init__(self, link: RedisLink, prefix: str):
        self.link = link
        self.prefix = prefix

    def key(self, key: str) -> str:
        return f"{self.prefix}:enrich:cache:{key}"

    async def get(self, key: str) -> Any | None:
        if not self.link.usable():
            return None
        try:
            raw = await self.link.client.get(self.key(key))
        except self.link.errors as exc:
            self.link.failed("cache", "lookups miss and results are not stored meanwhile", exc)
            return None
        self.link.answered()
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            log.warning("enrichment cache entry %s is not JSON; ignored", self.key(key))
            return None

    async def put(self, key: str, value: Any, ttl: float) -> None:
        if ttl <= 0 or not self.link.usable():
            return
        try:
            data = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            log.warning("enrichment response for %s not cached: not JSON (%s)", key, exc)
            return
        try:
            await self.link.client.set(self.key(key), data, px=max(1, math.ceil(ttl * 1000)))
        except self.link.errors as exc:
            self.link.failed("cache", "lookups miss and results are not stored meanwhile", exc)
            return
        self.link.answered()

    async def close(self) -> None:
        await self.link.close()


def redis_prefix(engine: Engine) -> str:
    """The deployment's name on Redis: its arq queue's name (``HUB_QUEUE_NAME``, ``hub:queue``)."""
    name = getattr(engine.queue, "queue_name", None)
    if isinstance(name, str) and name:
        return name
    return engine.settings.queue_name


class LimitSettings(Protocol):
    """What the limits read of the API's settings (:class:`hub.api.context.ApiSettings`)."""

    rate_limit: float
    rate_burst: int
    redis_timeout: float


def build_limits(settings: LimitSettings, engine: Engine) -> tuple[Limiter, ResponseCache]:
    """The rate limiter and response cache of one API server: shared through Redis when the hub has
    a Redis URL (``HUB_REDIS_URL``), else in this process."""
    url = engine.settings.redis_url
    if not url:
        return MemoryRateLimiter(settings.rate_limit, settings.rate_burst), MemoryCache()
    link = RedisLink(url, settings.redis_timeout)
    prefix = redis_prefix(engine)
    return RedisRateLimiter(link, prefix, settings.rate_limit, settings.rate_burst), RedisCache(link, prefix)
