"""Shared fixtures. PostgreSQL tests use HUB_TEST_POSTGRES_URL (``.ci/run`` sets it)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _install_sample_plugin() -> None:
    """Install tests/sample_plugin (a third-party plugin package) into .hub-test-plugins and put
    that folder on the path of this process and of the hub processes the tests start, so that
    the plugin is found through its ``hub.plugins`` entry point like any installed package.
    Re-installed only when its sources changed."""
    import fcntl
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    source, target = root / "tests" / "sample_plugin", root / ".hub-test-plugins"
    newest = max(p.stat().st_mtime for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    stamp = target / ".installed"
    target.mkdir(exist_ok=True)
    with open(root / ".hub-test-plugins.lock", "w") as lock:  # pytest-xdist's workers start together
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.stat().st_mtime < newest:
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                            "--upgrade", "--target", str(target), str(source)], check=True, capture_output=True)
            stamp.touch()
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH")) if p)


_install_sample_plugin()

# Tests whose processes cooperate by the clock (several workers, a hub killed and restarted) run
# one after another on one pytest-xdist worker (``--dist loadgroup``), beside the rest of the suite.
PROCESS_TESTS = (
    "tests/workers/",
    "tests/connectors/bus/test_bus_crash.py",
    "tests/engine/test_durability.py",
    "tests/agent/test_agent.py",
    "tests/connectors/test_container.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        where = Path(str(item.path)).relative_to(root).as_posix()
        if where.startswith(PROCESS_TESTS):
            item.add_marker(pytest.mark.xdist_group("processes"))

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
        _drop_schema(admin, schema)
        admin.dispose()


def _drop_schema(admin: Any, schema: str) -> None:
    """Drop a test's schema. Work the test left running (an execution it started, spans on their
    way to the database) may still be writing there on a connection of its own: the server then
    breaks the deadlock by failing one side, sometimes the DROP, which is tried again."""
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    for attempt in range(5):
        try:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            return
        except OperationalError as exc:
            if "deadlock detected" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.2)


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
