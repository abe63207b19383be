"""Shared fixtures. PostgreSQL tests use HUB_TEST_POSTGRES_URL (``.ci/run`` sets it)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from hub.store.store import Store  # noqa: E402

POSTGRES_URL = os.environ.get("HUB_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL")


@pytest.fixture
def redis_url() -> str:
    """The real Redis server of the tests (HUB_TEST_REDIS_URL; skipped when unset)."""
    if not REDIS_URL:
        pytest.skip("HUB_TEST_REDIS_URL is not set")
    return REDIS_URL


def _postgres_store() -> Iterator[Store]:
    if not POSTGRES_URL:
        pytest.skip("HUB_TEST_POSTGRES_URL is not set")
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in POSTGRES_URL else "?"
    store = Store.open(f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}")
    try:
        yield store
    finally:
        store.close()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store on SQLite (a file, WAL) and on the real PostgreSQL server."""
    if request.param == "sqlite":
        s = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
        yield s
        s.close()
    else:
        yield from _postgres_store()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    yield s
    s.close()
