"""The ``hub`` command as a user meets it: real subprocesses, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(tmp_path: Path):  # type: ignore[no-untyped-def]
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HUB_HOME": str(tmp_path / ".hub"), "PYTHONPATH": str(ROOT)}  # as the test set it
        env.pop("HUB_DATABASE_URL", None)
        return subprocess.run(
            [sys.executable, "-m", "hub.cli", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )

    return run


def test_run_prints_progress_and_outputs_then_show_and_list(hub) -> None:  # type: ignore[no-untyped-def]
    done = hub("run", str(ROOT / "flows/hello.yaml"), "-i", "name=Ada", "--flows", "none")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"greeting": "Hello, Ada!", "letters": 18, "branch": "then"}
    assert "SUCCESS" in done.stderr and "word[2]" in done.stderr and "Hello, Ada!" in done.stderr
    listed = hub("executions", "list", "--json")
    rows = json.loads(listed.stdout)
    assert len(rows) == 1 and rows[0]["state"] == "SUCCESS"
    shown = hub("executions", "show", rows[0]["id"][:12])
    assert shown.returncode == 0
    assert "examples.hello" in shown.stdout and "verdict" in shown.stdout and "Hello, Ada!" in shown.stdout
    logs = hub("logs", rows[0]["id"])
    assert "Hello, Ada!" in logs.stdout


def test_hub_run_keeps_its_trace_for_hub_trace_by_default(hub, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name in ("HUB_TRACING", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    flow = tmp_path / "two.yaml"
    flow.write_text("id: two\ntasks:\n  - {id: a, type: set, values: {v: 1}}\n  - {id: b, type: fail, message: nope}\n")
    done = json.loads(hub("run", str(flow), "--json", "--flows", "none").stdout)
    shown = hub("trace", done["id"])  # at once: the spans were written before `hub run` exited
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"execution {done['id']}  default.two  FAILED") and "1 spans" in lines[0]
    assert [line.split()[:2] for line in lines[2:]] == [["step", "a"], ["step", "b"]] and "error: nope" in lines[3]

    monkeypatch.setenv("HUB_TRACING", "off")  # still the way to run without
    quiet = json.loads(hub("run", str(flow), "--json", "--flows", "none").stdout)
    assert "0 spans" in hub("trace", quiet["id"], "--wait", "0").stdout


def test_json_log_lines_name_their_execution_and_trace(hub, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "shop.py").write_text(
        "import logging\n\n"
        "def refund(amount):\n"
        "    logging.getLogger('shop').warning('refunding %s', amount, extra={'order': 'A-7'})\n"
        "    return amount\n"
    )
    flow = tmp_path / "refund.yaml"
    flow.write_text("id: refund\nnamespace: shop\ntasks:\n"
                    "  - {id: pay, type: python, function: 'shop:refund', kwargs: {amount: 20}}\n")
    monkeypatch.delenv("HUB_TRACING", raising=False)
    monkeypatch.setenv("HUB_LOG_FORMAT", "json")
    done = hub("run", str(flow), "--json", "--flows", "none")
    assert done.returncode == 0, done.stderr
    execution = json.loads(done.stdout)
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    [line] = [one for one in lines if one["logger"] == "shop"]
    assert line["message"] == "refunding 20" and line["level"] == "WARNING" and line["order"] == "A-7"
    assert line["execution_id"] == execution["id"] and line["flow"] == "shop.refund" and line["process"] == "run"
    assert line["trace_id"] == execution["trace_id"] and len(line["span_id"]) == 16

    monkeypatch.setenv("HUB_LOG_FORMAT", "xml")
    bad = hub("run", str(flow), "--flows", "none")
    assert bad.returncode == 2 and "HUB_LOG_FORMAT" in bad.stderr and "Traceback" not in bad.stderr


def test_run_json_and_exit_code_of_a_failed_flow(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flow = tmp_path / "fails.yaml"
    flow.write_text("id: fails\ntasks:\n  - {id: stop, type: fail, message: nope}\n")
    done = hub("run", str(flow), "--json", "--flows", "none")
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert data["state"] == "FAILED" and data["error"]["message"] == "nope"
    assert data["steps"][0]["path"] == "stop"


def test_user_errors_are_messages_not_tracebacks(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\ntasks:\n  - {id: a, type: lgo, message: hi}\n  - {id: b, type: log, mesage: hi}\n  - {id: c, type: log, message: '{{ outputs.zz }}'}\n")
    for result in (
        hub("validate", str(bad)),
        hub("run", str(bad)),
        hub("run", str(ROOT / "flows/hello.yaml"), "-i", "nope=1"),
        hub("run", str(ROOT / "flows/hello.yaml"), "--inputs-json", "{not json"),
        hub("executions", "show", "doesnotexist"),
        hub("restart", "doesnotexist"),
        hub("run", str(ROOT / "flows/hello.yaml"), "--label", "team"),
    ):
        assert result.returncode in (1, 2), result
        assert "Traceback" not in result.stderr
        assert result.stderr.strip()
    validated = hub("validate", str(bad))
    assert "bad.yaml has 3 errors" in validated.stderr
    assert "bad.yaml:3:19: tasks[0].type: unknown task type 'lgo'; did you mean 'log'?" in validated.stderr


def test_validate_a_folder_and_schema(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ok = hub("validate", str(ROOT / "flows"))
    assert ok.returncode == 0, ok.stderr
    assert "examples.hello" in ok.stdout
    out = tmp_path / "schema.json"
    assert hub("schema", "-o", str(out)).returncode == 0
    schema = json.loads(out.read_text())
    assert "log" in schema["$defs"]["Task"]["properties"]["type"]["enum"]
    nowhere = hub("schema", "-o", str(tmp_path / "missing-dir" / "schema.json"))
    assert nowhere.returncode == 1 and "internal error" not in nowhere.stderr
    assert "cannot write" in nowhere.stderr and "No such file or directory" in nowhere.stderr


def test_help_texts(hub) -> None:  # type: ignore[no-untyped-def]
    top = hub("--help")
    for command in ("run", "validate", "executions", "resume", "restart", "kill", "schema", "logs"):
        assert command in top.stdout
    assert "--inputs-json" in hub("run", "--help").stdout


def test_bad_backfill_dates_are_a_usage_error(hub) -> None:  # type: ignore[no-untyped-def]
    result = hub("backfill", "ops.nightly", "--from", "yesterday", "--to", "2026-01-02")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Invalid value for --from: 'yesterday' is not an ISO date-time" in result.stderr


def test_run_of_a_flow_that_pauses_exits_3_at_once(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A paused approval with reminders hours away: `hub run` says PAUSED and exits 3 now; the
    execution waits in the store (it used to wait for the reminder timer)."""
    flow = tmp_path / "gate.yaml"
    flow.write_text(
        "id: gate\ntasks:\n"
        "  - {id: review, type: approval, title: Go?, message: Ship it?, channels: [web], approvers: [someone],"
        " timeout: 24h, remind_every: 4h}\n"
    )
    paused = hub("run", str(flow), "--flows", "none")
    assert paused.returncode == 3, paused.stderr
    rows = json.loads(hub("executions", "list", "--json").stdout)
    assert [r["state"] for r in rows] == ["PAUSED"]


def test_run_of_a_flow_whose_variables_fail_ends_failed_with_the_reason(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """(the execution used to stay RUNNING, while `hub run` printed the error and exited)"""
    flow = tmp_path / "vars.yaml"
    flow.write_text(
        "id: vars\nvariables: {who: '{{ trigger.body.missing.x }}'}\n"
        "tasks:\n  - {id: hello, type: log, message: 'hi {{ vars.who }}'}\n"
        "errors:\n  - {id: alert, type: log, message: 'failed: {{ error.message }}'}\n"
    )
    done = hub("run", str(flow), "--flows", "none")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "FAILED" in done.stderr
    assert ("error: ExpressionError: variables.who: 'dict object' has no attribute 'body'"
            " (in expression '{{ trigger.body.missing.x }}')") in done.stderr
    rows = json.loads(hub("executions", "list", "--json").stdout)
    assert [r["state"] for r in rows] == ["FAILED"]
    logs = hub("logs", rows[0]["id"])
    assert "failed: variables.who:" in logs.stdout


def test_a_setting_that_does_not_validate_is_named_with_its_variable(hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HUB_REDIS_URL", "localhost:6379")  # no scheme: redis-py would fail deep in start-up
    monkeypatch.setenv("HUB_MAX_CONCURRENCY", "many")
    for args in (("worker",), ("executions", "list")):
        done = hub(*args)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
        assert "invalid setting HUB_REDIS_URL: 'localhost:6379' is not a Redis URL" in done.stderr
        assert "invalid setting HUB_MAX_CONCURRENCY:" in done.stderr


def test_validate_names_recursive_aliases_and_duplicate_keys(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    looped = tmp_path / "looped.yaml"
    looped.write_text("a: &r [*r]\n")  # was an internal error (RecursionError), exit 70
    done = hub("validate", str(looped))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "looped.yaml:1:8: <root>: invalid YAML: the alias *r is inside its own anchor" in done.stderr
    twice = tmp_path / "twice.yaml"
    twice.write_text("id: a\ntasks:\n  - {id: t, type: log, message: hi}\nid: b\n")
    done = hub("validate", str(twice))
    assert done.returncode == 1
    assert "twice.yaml:4:1: <root>: invalid YAML: the key 'id' is given twice, at line 1 and line 4" in done.stderr


def test_a_reader_that_stops_early_ends_the_listing_quietly(tmp_path: Path) -> None:
    """`hub executions list | head -1`: the pipe closes while rows are still being written."""
    import asyncio

    from hub.flow.loader import load_file
    from hub.testing import make_engine

    engine = make_engine(home=tmp_path / ".hub")
    flow = load_file(ROOT / "flows/hello.yaml")

    async def start_many() -> None:
        for _ in range(900):  # ~90 KB of rows: more than a pipe holds
            await engine.start(flow, {"name": "Ada"}, enqueue=False)

    asyncio.run(start_many())
    engine.store.close()
    env = {**os.environ, "HUB_HOME": str(tmp_path / ".hub"), "PYTHONPATH": str(ROOT)}
    env.pop("HUB_DATABASE_URL", None)
    for _ in range(3):
        listing = subprocess.Popen(
            f"{sys.executable} -m hub.cli executions list --limit 900 | head -1", shell=True, env=env,
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, executable="/bin/bash",
        )
        out, err = listing.communicate(timeout=60)
        assert out.startswith("ID ") and out.count("\n") == 1
        assert err == "", err  # no "internal error: BrokenPipeError", no "Exception ignored"
    status = subprocess.run(
        f"set -o pipefail; {sys.executable} -m hub.cli executions list --limit 900 | head -1 >/dev/null",
        shell=True, env=env, cwd=tmp_path, capture_output=True, text=True, executable="/bin/bash", timeout=60,
    )
    assert status.returncode == 141 and status.stderr == ""  # as `yes | head -1` reports it
