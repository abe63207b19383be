"""One settings object per process: read and checked when a command starts, handed down after.

Real ``hub`` subprocesses for what a user meets (exit codes, one line per problem, no traceback),
and the engine with a real flow for the hand-down (a task uses the settings it was given).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hub.approvals.settings import ApprovalSettings
from hub.errors import InvalidSettings
from hub.settings import HubSettings, load_settings, misspelled

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(tmp_path: Path):  # type: ignore[no-untyped-def]
    def run(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") or k.startswith("HUB_TEST_")}
        environ.update({"HUB_HOME": str(tmp_path / ".hub"), "PYTHONPATH": str(ROOT), **env})
        return subprocess.run([sys.executable, "-m", "hub.cli", *args], env=environ, cwd=tmp_path,
                              capture_output=True, text=True, timeout=timeout)

    return run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_bad_setting_is_one_line_and_nothing_starts(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = {
        "HUB_LLM_MODELS": json.dumps({"fast": {"modle": "openai/gpt-4o-mini"}}),  # a typo in a model's key
        "HUB_TRACE_RETENTION_DAYS": "a week",
        "HUB_EMAIL_SMTP_PORT": "587/tcp",
    }
    for args in (("serve", "--port", str(free_port())), ("run", str(ROOT / "flows/hello.yaml")), ("worker",)):
        done = hub(*args, **bad)
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert lines == [
            "error: invalid setting HUB_LLM_MODELS: fast.model: Field required",
            "error: invalid setting HUB_LLM_MODELS: fast.modle: Extra inputs are not permitted",
            "error: invalid setting HUB_TRACE_RETENTION_DAYS: Input should be a valid number, unable to parse string as a number",
            "error: invalid setting HUB_EMAIL_SMTP_PORT: Input should be a valid integer, unable to parse string as an integer",
        ], args
    assert not (tmp_path / ".hub" / "hub.db").exists()  # no command got as far as opening the store


def test_a_models_file_that_does_not_load_stops_start_up(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "models.yaml").write_text("models:\n  fast:\n    model: openai/gpt-4o-mini\n    fallbacks: [cheap]\n")
    done = hub("serve", "--port", str(free_port()))
    assert done.returncode == 2
    assert ("error: invalid model aliases in models.yaml: model 'fast' falls back to 'cheap', which is not defined"
            in done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    done = hub("serve", "--port", str(free_port()), HUB_LLM_MODELS="not json")
    assert done.returncode == 2
    assert "error: invalid setting HUB_LLM_MODELS: not valid JSON" in done.stderr, done.stderr


def test_approval_link_ttl_in_plain_seconds_as_the_docs_say(hub, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HUB_APPROVAL_LINK_TTL", "6")
    assert ApprovalSettings().link_ttl == 6.0
    monkeypatch.setenv("HUB_APPROVAL_LINK_TTL", "90m")
    assert ApprovalSettings().link_ttl == 5400.0
    done = hub("executions", "list", HUB_APPROVAL_LINK_TTL="6")
    assert done.returncode == 0, done.stderr
    done = hub("executions", "list", HUB_APPROVAL_LINK_TTL="six")
    assert done.returncode == 2
    assert "error: invalid setting HUB_APPROVAL_LINK_TTL: 'six' is not a duration" in done.stderr


def test_a_misspelled_variable_is_a_warning_with_the_right_name(hub) -> None:  # type: ignore[no-untyped-def]
    done = hub("executions", "list", HUB_APROVAL_SECRET="s3cret", HUB_SECRET_OPENAI_KEY="k", HUB_PROTOCOL="https")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "warning: HUB_APROVAL_SECRET is not a setting of the hub (ignored); did you mean HUB_APPROVAL_SECRET?"
    ]
    assert "no executions" in done.stdout


def test_misspelled_knows_every_section_and_alias() -> None:
    environ = {"HUB_SLACK_BOT_TOKN": "x", "HUB_SLACK_SIGNING_SECRET": "y", "HUB_DATABSE_URL": "z",
               "HUB_LLM_MODEL_FILE": "m.yaml", "HUB_SECRET_DATABSE_URL": "a secret, not a setting",
               "HUB_NOTION_TOKEN": "ok", "PATH": "/bin"}
    assert misspelled(environ) == [
        "HUB_DATABSE_URL is not a setting of the hub (ignored); did you mean HUB_DATABASE_URL?",
        "HUB_LLM_MODEL_FILE is not a setting of the hub (ignored); did you mean HUB_LLM_MODELS_FILE?",
        "HUB_SLACK_BOT_TOKN is not a setting of the hub (ignored); did you mean HUB_SLACK_BOT_TOKEN?",
    ]


def test_load_settings_builds_each_section_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.slack.settings import SlackSettings

    monkeypatch.setenv("HUB_SLACK_TIMEOUT", "7")
    settings = load_settings()
    slack = settings.section(SlackSettings)
    monkeypatch.setenv("HUB_SLACK_TIMEOUT", "9")  # read at start-up, not again at every use
    assert settings.section(SlackSettings) is slack and slack.timeout == 7
    monkeypatch.setenv("HUB_MAX_CONCURRENCY", "many")
    with pytest.raises(InvalidSettings) as caught:
        load_settings()
    assert caught.value.problems == [
        "invalid setting HUB_MAX_CONCURRENCY: Input should be a valid integer, unable to parse string as an integer"
    ]


def test_hub_serve_links_follow_its_port_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.service.api_cli import _links_follow_port

    monkeypatch.delenv("HUB_APPROVAL_PUBLIC_URL", raising=False)
    settings = HubSettings()
    _links_follow_port(settings, "0.0.0.0", 9123)
    assert settings.section(ApprovalSettings).public_url == "http://127.0.0.1:9123"
    settings = HubSettings()
    _links_follow_port(settings, "127.0.0.2", 9124)
    assert settings.section(ApprovalSettings).public_url == "http://127.0.0.2:9124"
    monkeypatch.setenv("HUB_APPROVAL_PUBLIC_URL", "https://hub.example.com")
    settings = HubSettings()
    _links_follow_port(settings, "0.0.0.0", 9125)
    assert settings.section(ApprovalSettings).public_url == "https://hub.example.com"
