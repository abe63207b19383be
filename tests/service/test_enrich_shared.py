"""The enrichment rate limit and response cache shared by API replicas through Redis, and what
happens when Redis does not answer. Replicas are two apps on two engines over one store.

Tests that need the real Redis are skipped unless HUB_TEST_REDIS_URL is set; the Redis-down tests
point at a port where nothing answers and always run."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.api.context import ApiSettings
from hub.api.limits import (
    MemoryCache,
    MemoryRateLimiter,
    RedisCache,
    RedisLink,
    RedisRateLimiter,
    build_limits,
)
from hub.engine.runner import Engine
from hub.store.api_store import ApiStore
from hub.store.store import Store
from hub.testing import make_engine
from tests.conftest import REDIS_URL  # noqa: E402
from tests.service.conftest import assert_error, bearer, deploy, make_client

ROOT = Path(__file__).resolve().parents[2]

COUNTED = """\
id: counted
namespace: demo
labels: {{enrich_cache_ttl: {ttl}}}
inputs:
  - {{id: domain, type: string, required: true}}
tasks:
  - {{id: look, type: python, function: "tests.service.steps:count", args: ["{{{{ inputs.domain }}}}"]}}
outputs: {{domain: "{{{{ inputs.domain }}}}", calls: "{{{{ outputs.look.calls }}}}"}}
"""


class FakeTime:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hub_name(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A deployment name of its own (HUB_QUEUE_NAME), so keys of other tests or hubs never mix."""
    name = f"hubtest:{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("HUB_QUEUE_NAME", name)
    yield name
    if REDIS_URL:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{name}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def replicas(store: Store, tmp_path: Path, redis_url: str, settings: ApiSettings,
             auth: str = "auto") -> tuple[TestClient, TestClient]:
    """Two API servers on one store and one Redis, as two replicas behind a load balancer."""
    engines = [make_engine(store, home=tmp_path / f"home{i}", redis_url=redis_url) for i in range(2)]
    a, b = (make_client(e, auth=auth, settings=settings) for e in engines)
    return a, b


# -- the in-memory implementations and the choice ------------------------------------------------


def test_embedded_default_is_in_memory_and_does_not_import_redis(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from hub.api.app import create_app\n"
        "from hub.api.context import ApiSettings\n"
        "from hub.api.limits import MemoryCache, MemoryRateLimiter, build_limits\n"
        "from hub.testing import make_engine\n"
        f"engine = make_engine(home={str(tmp_path)!r})\n"
        "limiter, cache = build_limits(ApiSettings(rate_limit=1), engine)\n"
        "assert isinstance(limiter, MemoryRateLimiter) and isinstance(cache, MemoryCache)\n"
        "assert 'redis' not in sys.modules, 'redis imported on the embedded path'\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HUB_REDIS_URL",)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_redis_url_picks_the_shared_implementations(tmp_path: Path, hub_name: str) -> None:
    engine = make_engine(home=tmp_path, redis_url="redis://127.0.0.1:1/0")
    limiter, cache = build_limits(ApiSettings(rate_limit=2), engine)
    assert isinstance(limiter, RedisRateLimiter) and isinstance(cache, RedisCache)
    assert limiter.key("k1") == f"{hub_name}:enrich:rate:k1"
    assert cache.key("demo.x@1:ab") == f"{hub_name}:enrich:cache:demo.x@1:ab"
    assert limiter.link is cache.link  # one connection pool


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_memory_limiter_and_cache_with_a_fake_clock() -> None:
    clock = FakeTime()
    limiter = MemoryRateLimiter(rate=0.5, burst=2, clock=clock)
    assert [await limiter.check("k") for _ in range(2)] == [0.0, 0.0]
    assert await limiter.check("k") == pytest.approx(2.0)  # one token at 0.5/s
    assert await limiter.check("other") == 0.0
    clock.now += 2.0
    assert await limiter.check("k") == 0.0

    cache = MemoryCache(clock=clock)
    await cache.put("a", {"x": 1}, ttl=10)
    assert await cache.get("a") == {"x": 1}
    clock.now += 10
    assert await cache.get("a") is None


# -- shared through the real Redis -----------------------------------------------------------


def test_rate_limit_holds_across_replicas(store: Store, tmp_path: Path, redis_url: str, hub_name: str) -> None:
    # 0.01/s refills one token in 100 s: over this test the burst is all there is to spend
    settings = ApiSettings(rate_limit=0.01, rate_burst=4, enrich_timeout=10)
    keys = ApiStore(store)
    run_key = keys.create_key("replicas-run", ["run"])[1]
    admin_key = keys.create_key("replicas-admin", ["admin"])[1]
    a, b = replicas(store, tmp_path, redis_url, settings)
    with a, b:
        deploy(a, headers=bearer(admin_key))
        answers = [(a if i % 2 == 0 else b).post("/v1/enrich/demo/hello", json={}, headers=bearer(run_key))
                   for i in range(10)]
        assert [r.status_code for r in answers].count(200) == 4, [r.status_code for r in answers]
        assert {r.status_code for r in answers} == {200, 429}
        for limited in (r for r in answers if r.status_code == 429):
            error = assert_error(limited, 429, "TooManyRequests")
            assert "rate limit" in error["detail"]
            assert 1 <= int(limited.headers["Retry-After"]) <= 100
        # a batch is one call against the same bucket
        assert_error(b.post("/v1/enrich/demo/hello/batch", json={"items": [{}]}, headers=bearer(run_key)), 429)
        # another key has its own bucket, on both replicas
        assert a.post("/v1/enrich/demo/hello", json={}, headers=bearer(admin_key)).status_code == 200
        assert b.post("/v1/enrich/demo/hello", json={}, headers=bearer(admin_key)).status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_redis_bucket_matches_the_memory_one(redis_url: str, hub_name: str) -> None:
    """Same decisions and the same waits (hence the same Retry-After) for the same calls in time."""
    clock = FakeTime()
    memory = MemoryRateLimiter(rate=2.0, burst=3, clock=clock)
    link = RedisLink(redis_url)
    shared = [RedisRateLimiter(link, hub_name, rate=2.0, burst=3, clock=clock) for _ in range(2)]
    try:
        steps = [0, 0, 0, 0, 0.1, 0.4, 0.5, 0, 0, 3.0, 0, 0, 0, 0, 0.25]
        for i, step in enumerate(steps):
            clock.now += step
            want = await memory.check("k")
            got = await shared[i % 2].check("k")
            assert got == pytest.approx(want, abs=1e-9), (i, want, got)
        assert await shared[0].check("k", cost=5) == pytest.approx(await memory.check("k", cost=5))
        ttl = await link.client.pttl(shared[0].key("k"))
        assert 0 < ttl <= 3 / 2.0 * 1000 + 1000  # gone once it would be full anyway
    finally:
        await link.close()


def test_cache_entry_is_shared_and_expires(store: Store, tmp_path: Path, redis_url: str, hub_name: str) -> None:
    import redis

    from tests.service import steps

    steps.CALLS.clear()
    settings = ApiSettings(enrich_timeout=10)
    a, b = replicas(store, tmp_path, redis_url, settings, auth="open")
    client = redis.Redis.from_url(redis_url)
    try:
        with a, b:
            deploy(a, COUNTED.format(ttl="10m"))
            first = a.post("/v1/enrich/demo/counted", json={"domain": "e.io"}).json()
            second = b.post("/v1/enrich/demo/counted", json={"domain": "e.io"}).json()
            assert first["cached"] is False and second["cached"] is True
            assert second["id"] == first["id"] and second["outputs"] == first["outputs"]
            assert steps.CALLS == {"e.io": 1}
            [key] = client.keys(f"{hub_name}:enrich:cache:*")
            assert json.loads(client.get(key))["outputs"] == first["outputs"]  # JSON
            assert 0 < client.pttl(key) <= 600_000  # the TTL is on the key

            # a short TTL: once Redis expired the key, the other replica misses and runs the flow
            deploy(a, COUNTED.format(ttl="1s"))
            assert a.post("/v1/enrich/demo/counted", json={"domain": "f.io"}).json()["cached"] is False
            deadline = time.monotonic() + 20
            while client.keys(f"{hub_name}:enrich:cache:demo.counted@2:*") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not client.keys(f"{hub_name}:enrich:cache:demo.counted@2:*")
            again = b.post("/v1/enrich/demo/counted", json={"domain": "f.io"}).json()
            assert again["cached"] is False
    finally:
        client.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_after_a_failure_redis_is_skipped_then_tried_again(
    redis_url: str, hub_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeTime()
    link = RedisLink(redis_url, clock=clock)
    limiter = RedisRateLimiter(link, hub_name, rate=1.0, burst=1)
    cache = RedisCache(link, hub_name)
    try:
        await cache.put("k", {"v": 1}, 60)
        with caplog.at_level(logging.WARNING, logger="hub.api.limits"):
            link.failed("cache", "testing", ConnectionError("simulated"))
            assert await cache.get("k") is None  # not tried: a miss
            assert await limiter.check("who") == 0.0  # not tried: the local bucket
            assert not await link.client.exists(limiter.key("who"))
            clock.now += link.retry_interval
            assert await cache.get("k") == {"v": 1}
            assert await limiter.check("who") == 0.0  # Redis again: its own bucket, still full
            assert await link.client.exists(limiter.key("who"))
            assert await limiter.check("who") > 0
        messages = [r.getMessage() for r in caplog.records]
        assert any("unreachable" in m for m in messages) and any("answers again" in m for m in messages)
    finally:
        await link.close()


# -- Redis down ---------------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("down", ["refused", "hung"])
def test_redis_down_limits_locally_and_misses_the_cache(
    sqlite_store: Store, tmp_path: Path, hub_name: str, down: str, request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.service import steps

    port = free_port() if down == "refused" else request.getfixturevalue("silent_port")
    url = f"redis://127.0.0.1:{port}/0"
    steps.CALLS.clear()
    settings = ApiSettings(rate_limit=0.01, rate_burst=3, enrich_timeout=10, redis_timeout=0.2)
    engine: Engine = make_engine(sqlite_store, home=tmp_path / "home", redis_url=url)
    run_key = ApiStore(sqlite_store).create_key("down-run", ["run"])[1]
    admin_key = ApiStore(sqlite_store).create_key("down-admin", ["admin"])[1]
    with caplog.at_level(logging.WARNING, logger="hub.api.limits"), \
            make_client(engine, auth="auto", settings=settings) as client:
        deploy(client, COUNTED.format(ttl="10m"), headers=bearer(admin_key))
        answers = [client.post("/v1/enrich/demo/counted", json={"domain": "g.io"}, headers=bearer(run_key))
                   for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.json()["cached"] for r in answers[:3]] == [False, False, False]  # the cache misses
        assert steps.CALLS == {"g.io": 3}  # every accepted call ran
        assert int(answers[3].headers["Retry-After"]) >= 1
        assert client.post("/v1/enrich/demo/counted/batch", json={"items": [{"domain": "h.io"}]},
                           headers=bearer(admin_key)).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1, warnings  # said once, not once per call
    assert f"127.0.0.1:{port}" in warnings[0]
