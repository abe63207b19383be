"""email.send inside real flows (the engine, the store, the entry point), and the ``hub email`` CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.email import outbox
from connectors.email.cli import email
from hub.testing import run_flow
from tests.fakes.smtp_server import smtp_server

FLOW = """
id: welcome
namespace: sales
inputs:
  - {id: emails, type: list, required: true}
tasks:
  - id: each
    type: for_each
    items: "{{ inputs.emails }}"
    tasks:
      - id: notify
        type: email.send
        from: Sales <sales@example.com>
        to: "{{ item }}"
        subject: "Welcome {{ item }}"
        text: "Hello {{ item }}, thanks for signing up."
outputs:
  sent: "{{ outputs.each | length }}"
"""


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BACKEND", "SMTP_HOST", "SENDGRID_API_KEY", "FROM_ADDRESS"):
        monkeypatch.delenv(f"HUB_EMAIL_{name}", raising=False)


def test_flow_sends_to_the_outbox_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_flow(FLOW, {"emails": ["ana@example.com", "bob@example.com"]}, home=tmp_path)
    assert result.state == "SUCCESS", result.error
    store = result.engine.store
    messages = outbox.list_messages(store, status="outbox", execution_id=result.id)
    assert sorted(m["subject"] for m in messages) == ["Welcome ana@example.com", "Welcome bob@example.com"]
    assert {m["task_path"] for m in messages} == {"notify[0]", "notify[1]"}

    monkeypatch.setenv("HUB_HOME", str(tmp_path))
    runner = CliRunner()
    listing = runner.invoke(email, ["outbox"])
    assert listing.exit_code == 0, listing.output
    assert "Welcome ana@example.com" in listing.output and "outbox" in listing.output
    shown = runner.invoke(email, ["show", messages[0]["id"][:10]])
    assert shown.exit_code == 0, shown.output
    assert "thanks for signing up" in shown.output and "Sales <sales@example.com>" in shown.output
    assert runner.invoke(email, ["show", "zzz"]).exit_code != 0


def test_flow_sends_over_smtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with smtp_server(security="none") as sink:
        monkeypatch.setenv("HUB_EMAIL_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("HUB_EMAIL_SMTP_PORT", str(sink.port))
        monkeypatch.setenv("HUB_EMAIL_SMTP_SECURITY", "none")
        result = run_flow(FLOW, {"emails": ["ana@example.com"]}, home=tmp_path)
    assert result.state == "SUCCESS", result.error
    [received] = sink.messages
    assert received.rcpt_tos == ["ana@example.com"]
    assert received.parsed()["Subject"] == "Welcome ana@example.com"


def test_invalid_recipient_is_a_flow_error(tmp_path: Path) -> None:
    result = run_flow(FLOW, {"emails": ["not-an-address"]}, home=tmp_path)
    assert result.state == "FAILED"
    assert "not an email address" in str(result.error)
