"""``hub worker`` and ``hub serve`` refuse option values they cannot run with, as usage errors;
``hub health`` answers for whichever of them runs here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from tests.workers.conftest import Workers


@pytest.mark.parametrize("args", [
    ["worker", "--concurrency", "0"],
    ["worker", "--concurrency", "-1"],
    ["worker", "--poll-delay", "0"],
    ["worker", "--sweep-interval", "-5"],
    ["worker", "--grace", "-1"],
    ["worker", "--log-level", "loud"],
    ["serve", "--port", "70000"],
    ["serve", "--log-level", "loud"],
])
def test_impossible_option_values_are_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for" in result.output and args[1] in result.output


def test_health_of_a_worker_is_the_age_of_its_last_answered_poll(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time

    from hub.service.health import ALIVE_FILE

    monkeypatch.setenv("HUB_HOME", str(tmp_path))
    runner = CliRunner()
    missing = runner.invoke(main, ["health", "--worker"])
    assert missing.exit_code == 1 and "no worker runs" in missing.output

    alive = tmp_path / ALIVE_FILE
    alive.touch()
    for args in (["health"], ["health", "--worker"]):  # the file says this is a worker: checked by default
        fresh = runner.invoke(main, args)
        assert fresh.exit_code == 0 and fresh.output.startswith("ok: worker"), fresh.output
    old = time.time() - 45
    os.utime(alive, (old, old))
    stale = runner.invoke(main, ["health"])
    assert stale.exit_code == 1 and "s ago (limit 30s)" in stale.output
    assert runner.invoke(main, ["health", "--max-age", "60"]).exit_code == 0


def test_health_with_settings_it_cannot_read_says_so_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_HOME", str(tmp_path))
    monkeypatch.setenv("HUB_MAX_CONCURRENCY", "many")
    result = CliRunner().invoke(main, ["health", "--worker"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception  # a message, not a raised error
    assert result.output.startswith("unhealthy: the hub's settings cannot be read:") and "invalid setting HUB_MAX_CONCURRENCY:" in result.output


def test_health_of_the_api_is_its_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from hub.testing import serve_app

    monkeypatch.setenv("HUB_HOME", str(tmp_path))
    app = FastAPI()
    app.get("/health")(lambda: {"status": "ok"})
    app.get("/ready")(lambda: JSONResponse({"status": "unavailable"}, status_code=503))
    runner = CliRunner()
    with serve_app(app) as base:
        ok = runner.invoke(main, ["health", "--url", f"{base}/health"])
        assert ok.exit_code == 0 and ok.output.startswith("ok: API"), ok.output
        down = runner.invoke(main, ["health", "--url", f"{base}/ready"])
        assert down.exit_code == 1 and "answered 503" in down.output
    gone = runner.invoke(main, ["health", "--url", f"{base}/health", "--timeout", "1"])
    assert gone.exit_code == 1 and "does not answer" in gone.output


@pytest.mark.postgres
def test_a_running_worker_is_healthy_and_a_stopped_one_is_not(workers: Workers, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from tests.workers.conftest import ROOT, wait_for

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hub.cli", "health", *args], cwd=ROOT, env=workers.env,
                              capture_output=True, text=True, timeout=30)

    proc = workers.spawn()
    workers.wait_ready()
    wait_for(lambda: check().returncode == 0, message="a healthy worker")
    assert check("--worker").stdout.startswith("ok: worker")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, workers.logs()
    assert not (tmp_path / "home" / "worker.alive").exists()
    stopped = check("--worker")
    assert stopped.returncode == 1 and "no worker runs" in stopped.stdout


@pytest.mark.postgres
def test_a_worker_that_hands_executions_over_at_stop_removes_its_health_file(
    workers: Workers, pg_url: str, redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    """Past ``--grace`` the worker ends with ``os._exit`` (no ``finally``): the file must go anyway."""
    import signal

    from tests.workers.conftest import wait_for
    from tests.workers.steps import lines
    from tests.workers.test_workers import engine_for, start

    log = tmp_path / "runs.jsonl"
    flow = f"""
id: handover
namespace: wh
tasks:
  - {{id: slow, type: python, function: "tests.workers.steps:record", kwargs: {{log: "{log}", name: slow, sleep: 30}}}}
"""
    proc = workers.spawn("--grace", "0.2")
    workers.wait_ready()
    alive = tmp_path / "home" / "worker.alive"
    engine = engine_for(pg_url, redis_url, queue_name, tmp_path)
    try:
        [execution_id] = start(engine, flow)
        wait_for(lambda: lines(log), message="the slow step to start")
        assert alive.exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, workers.logs()
        assert "handing 1 running execution(s) over" in workers.logs()
        assert not alive.exists()
        assert engine.store.get_execution(execution_id)["owner"] is None  # released for another worker
    finally:
        engine.store.close()


def test_a_worker_imports_litellm_when_a_step_needs_it_not_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """litellm costs a worker ~100 MiB and seconds of import; ``hub serve`` preloads it when an
    alias needs it (its first synchronous call must not wait), a worker only when asked."""
    from types import SimpleNamespace

    from hub.llm.client import install
    from hub.llm.settings import LLMSettings
    from hub.service.cli import worker_settings
    from hub.settings import HubSettings

    monkeypatch.setenv("HUB_LLM_MODELS", '{"m": {"model": "anthropic/claude-3-5-sonnet"}}')  # through litellm
    preloaded: list[LLMSettings] = []
    monkeypatch.setattr("hub.llm.client.preload_litellm", preloaded.append)

    def preloads(settings: HubSettings) -> bool:
        preloaded.clear()
        install(SimpleNamespace(settings=settings))
        return bool(preloaded)

    assert preloads(HubSettings())  # hub serve
    assert not preloads(worker_settings(HubSettings()))
    monkeypatch.setenv("HUB_LLM_PRELOAD", "true")
    assert preloads(worker_settings(HubSettings()))


HEAVY = [
    "fastapi", "starlette", "uvicorn",  # the API: a worker serves no HTTP
    "hub.api.app", "hub.console.pages",
    "litellm", "aiohttp", "httpx",  # model and HTTP clients: imported by the steps that call out
    "cryptography.hazmat.bindings._rust",  # PyJWT's, through redis: deferred until a token is used
    "opentelemetry.sdk.metrics",  # no metrics exporter configured
    "sqlmodel", "sqlalchemy.orm",  # the store's tables are SQLAlchemy Core tables
    "sqlite3",  # the store is on PostgreSQL
    "wrapt",  # the hook that instruments httpx once it is imported is the hub's own
]


@pytest.mark.postgres
def test_a_worker_running_core_steps_imports_no_api_model_or_http_client(
    workers: Workers, pg_url: str, redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    """Every module a worker imports is resident memory of every worker process: one that runs
    core steps only must not carry the API, litellm, HTTP clients or unused SDKs."""
    from tests.workers.conftest import wait_for
    from tests.workers.test_workers import all_ended, engine_for, start

    flow = f"""
id: lean
namespace: wm
tasks:
  - {{id: first, type: set, values: {{n: 2}}}}
  - {{id: modules, type: python, function: "tests.workers.steps:loaded", kwargs: {{modules: {HEAVY}}}}}
outputs: {{heavy: "{{{{ outputs.modules }}}}", n: "{{{{ outputs.first.n }}}}"}}
"""
    workers.spawn()
    engine = engine_for(pg_url, redis_url, queue_name, tmp_path)
    try:
        [execution_id] = start(engine, flow)
        wait_for(lambda: all_ended(engine, [execution_id]), message="the execution to end")
        execution = engine.store.get_execution(execution_id)
        assert execution["state"] == "SUCCESS", workers.logs()
        assert execution["outputs"] == {"heavy": [], "n": 2}
    finally:
        engine.store.close()


def test_pyjwt_deferred_by_the_queue_module_still_works_when_used() -> None:
    """The queue module defers PyJWT's code (redis names one of its types at import); a program
    that then uses PyJWT gets the real module: names, ``from`` imports and submodules."""
    code = (
        "import sys, hub.service.queue_arq\n"
        "assert type(sys.modules['jwt']).__name__ == '_Deferred'\n"
        "import jwt\n"
        "from jwt import PyJWTError\n"
        "import jwt.algorithms\n"
        "token = jwt.encode({'n': 1}, 'k' * 32, algorithm='HS256')\n"
        "assert jwt.decode(token, 'k' * 32, algorithms=['HS256']) == {'n': 1}\n"
        "assert issubclass(PyJWTError, Exception) and jwt.algorithms.has_crypto is not None\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
