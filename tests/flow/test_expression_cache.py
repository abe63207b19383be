"""Compiled expressions: a bounded LRU that drops one entry at a time, counted hits and misses,
and each expression of a flow compiled once, when the flow is loaded, then reused by every render."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hub.flow.expressions import DEFAULT_CACHE_SIZE, Expressions, expressions
from hub.flow.loader import FlowLoader
from hub.flow.lru import Lru
from hub.settings import HubSettings
from hub.testing import make_engine


def test_the_least_recently_used_entry_goes_first_and_only_it() -> None:
    cache: Lru[str, int] = Lru(3)
    for key, value in (("a", 1), ("b", 2), ("c", 3)):
        cache.put(key, value)
    assert cache.get("a") == 1  # a is now the most recently used: b is the oldest
    cache.put("d", 4)
    assert "b" not in cache
    assert [key in cache for key in "acd"] == [True, True, True]
    assert (cache.hits, cache.misses, cache.evictions) == (1, 0, 1)
    assert cache.get("b") is None
    assert cache.misses == 1
    for i in range(100):  # far past the capacity: still full, never emptied
        cache.put(f"k{i}", i)
        assert len(cache) == 3
    assert [f"k{i}" in cache for i in (97, 98, 99)] == [True, True, True]
    assert cache.evictions == 101


def test_resize_drops_the_oldest_and_a_capacity_below_one_is_refused() -> None:
    cache: Lru[int, int] = Lru(5)
    for i in range(5):
        cache.put(i, i)
    cache.get(0)
    cache.resize(2)
    assert len(cache) == 2 and 0 in cache and 4 in cache
    with pytest.raises(ValueError, match="at least 1"):
        cache.resize(0)
    with pytest.raises(ValueError, match="at least 1"):
        Lru(0)


def test_past_its_capacity_the_expression_cache_keeps_the_recent_working_set() -> None:
    """The old cache was cleared whole past 5,000 entries: every expression compiled again."""
    exprs = Expressions(cache_size=100)
    sources = [f"{{{{ x + {i} }}}}" for i in range(150)]
    for source in sources:
        assert exprs.render(source, {"x": 1}) == 1 + int(source.split("+ ")[1].rstrip(" }"))
    assert len(exprs.cache) == 100
    assert exprs.compilations == 150
    for source in sources[50:]:  # the 100 most recent are all still compiled
        exprs.render(source, {"x": 1})
    assert exprs.compilations == 150
    assert exprs.cache.hits == 100


def test_hit_rate_moves_with_renders() -> None:
    exprs = Expressions(cache_size=10)
    assert exprs.cache.hit_rate() is None
    exprs.render("{{ 1 + 1 }}", {})
    assert exprs.cache.hit_rate() == 0.0
    for _ in range(3):
        exprs.render("{{ 1 + 1 }}", {})
    assert exprs.cache.hit_rate() == 0.75
    assert exprs.condition("x > 1", {"x": 2}) is True  # a condition is cached as "{{ x > 1 }}"
    assert (exprs.cache.hits, exprs.cache.misses) == (3, 2)


def test_the_setting_sizes_the_process_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert HubSettings().expression_cache_size == DEFAULT_CACHE_SIZE
    monkeypatch.setenv("HUB_EXPRESSION_CACHE_SIZE", "1234")
    assert HubSettings().expression_cache_size == 1234
    shared = expressions()
    before = shared.cache.capacity
    engine = make_engine(home=str(tmp_path), expression_cache_size=1234)
    try:
        assert shared.cache.capacity == 1234
    finally:
        shared.cache.resize(before)
        engine.store.close()


@contextmanager
def jinja_compilations(exprs: Expressions) -> Iterator[list[str]]:
    """Every source Jinja's compiler turns into Python code while the block runs."""
    seen: list[str] = []
    original = exprs.env.compile

    def counting(source: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(source))
        return original(source, *args, **kwargs)

    exprs.env.compile = counting  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        del exprs.env.compile


def test_each_expression_is_compiled_once_between_load_and_render(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]  # in every source: none compiled by an earlier test in this process
    flow_text = f"""
id: once_{tag}
inputs: [{{id: n, type: int, default: 3}}]
tasks:
  - id: first
    type: set
    values: {{v: "{{{{ (inputs.n + 1) if '{tag}' else 0 }}}}", tag: "{tag}-{{{{ inputs.n }}}}"}}
  - id: maybe
    type: set
    if: "outputs.first.v > 1 and '{tag}' != ''"
    values: {{w: "{{{{ (outputs.first.v * 2) if '{tag}' else 0 }}}}"}}
  - id: each
    type: for_each
    items: "{{{{ range(outputs.maybe.w) | list if '{tag}' else [] }}}}"
    tasks:
      - {{id: one, type: set, values: {{sq: "{{{{ item * item }}}} {tag}"}}}}
outputs:
  total: "{{{{ outputs.maybe.w }}}}{tag}"
"""
    shared = expressions()
    engine = make_engine(home=str(tmp_path))
    try:
        with jinja_compilations(shared) as compiled:
            flow = FlowLoader(engine.registry).load_text(flow_text)
            at_load = list(compiled)
            engine.deploy(flow)
            execution = asyncio.run(engine.execute(flow))
            assert execution["state"] == "SUCCESS", execution["error"]
            assert execution["outputs"] == {"total": f"8{tag}"}
        distinct = 7  # v, tag, if, w, items, sq, total
        assert len(at_load) == distinct
        assert compiled == at_load  # the renders (8 iterations of the for_each among them) compiled nothing
    finally:
        engine.store.close()
