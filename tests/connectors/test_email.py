"""email.send: the outbox default, SMTP against a real aiosmtpd server, templates, validation."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from connectors.email import outbox
from connectors.email.message import EmailSendParams
from connectors.email.tasks import EmailSend
from hub.errors import ConnectorError, TaskError
from hub.settings import HubSettings
from hub.store.store import Store
from hub.tasks.base import TaskContext
from tests.fakes.smtp_server import free_port, self_signed, smtp_server

pytestmark = pytest.mark.anyio

BASE = {"from": "Hub <hub@example.com>", "subject": "Welcome", "text": "Hello Ana"}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BACKEND", "SMTP_HOST", "SENDGRID_API_KEY", "FROM_ADDRESS", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.delenv(f"HUB_EMAIL_{name}", raising=False)
    monkeypatch.setenv("HUB_EMAIL_ATTACHMENT_DIRS", str(tmp_path))
    monkeypatch.setenv("HUB_EMAIL_TEMPLATES_DIR", str(tmp_path / "templates"))


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("certs"))


def make_ctx(tmp_path: Path, store: Store | None, path: str = "notify", execution_id: str = "exec1") -> TaskContext:
    return TaskContext(
        execution_id=execution_id,
        namespace="sales",
        flow_id="welcome",
        task_id=path,
        path=path,
        attempt=1,
        settings=HubSettings(home=tmp_path),
        store=store,
    )


async def send(ctx: TaskContext, **params: object) -> dict:
    return await EmailSend().run(ctx, EmailSendParams.model_validate(params))


def use_smtp(monkeypatch: pytest.MonkeyPatch, port: int, security: str = "none", **extra: str) -> None:
    monkeypatch.setenv("HUB_EMAIL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HUB_EMAIL_SMTP_PORT", str(port))
    monkeypatch.setenv("HUB_EMAIL_SMTP_SECURITY", security)
    for key, value in extra.items():
        monkeypatch.setenv(f"HUB_EMAIL_{key.upper()}", value)


# -- outbox ------------------------------------------------------------------------------------------


async def test_nothing_configured_means_outbox_not_a_drop(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    ctx = make_ctx(tmp_path, store)
    out = await send(
        ctx,
        **BASE,
        to=["Ana <ana@example.com>"],
        bcc="audit@example.com",
        attachments=[{"content": base64.b64encode(b"a,b\n1,2\n").decode(), "filename": "report.csv"}],
    )
    assert out["backend"] == "outbox" and out["status"] == "outbox" and out["deduplicated"] is False
    assert out["accepted"] == ["ana@example.com", "audit@example.com"]
    assert "stored in the outbox" in caplog.text and "HUB_EMAIL_SMTP_HOST" in caplog.text

    listed = outbox.list_messages(store, status="outbox")
    assert [m["id"] for m in listed] == [out["id"]]
    assert "message" not in listed[0]  # listings carry no bodies
    full = outbox.get_message(store, out["id"][:8])
    assert full["message"]["text"] == "Hello Ana"
    assert full["message"]["bcc"] == ["audit@example.com"]
    assert full["execution_id"] == "exec1" and full["task_path"] == "notify"
    assert outbox.attachment_content(store, out["id"], 0) == ("report.csv", "text/csv", b"a,b\n1,2\n")

    again = await send(ctx, **BASE, to=["Ana <ana@example.com>"])
    assert again["deduplicated"] is True and again["id"] == out["id"]
    assert len(outbox.list_messages(store)) == 1


async def test_outbox_needs_a_store(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="store"):
        await send(make_ctx(tmp_path, None), **BASE, to="ana@example.com")


# -- SMTP ------------------------------------------------------------------------------------------------


async def test_smtp_starttls_with_auth(
    sqlite_store: Store, tmp_path: Path, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "logo.png").write_bytes(b"\x89PNG fake")
    with smtp_server(security="starttls", cert=cert, users={"hub": "s3cret"}) as sink:
        use_smtp(
            monkeypatch, sink.port, "starttls",
            smtp_username="hub", smtp_password="s3cret", smtp_ca_file=str(cert[0]),
        )
        out = await send(
            make_ctx(tmp_path, sqlite_store),
            **{**BASE, "html": "<p>Hello <b>Ana</b></p>"},
            to="Ana <ana@example.com>, bob@example.com",
            cc=["carol@example.com"],
            bcc=["audit@example.com"],
            reply_to="sales@example.com",
            headers={"X-Campaign": "spring"},
            attachments=[{"path": str(tmp_path / "files" / "logo.png")}],
        )
    assert out["backend"] == "smtp" and out["status"] == "sent"
    assert sink.logins == ["hub"]
    [received] = sink.messages
    assert received.mail_from == "hub@example.com"
    assert received.rcpt_tos == ["ana@example.com", "bob@example.com", "carol@example.com", "audit@example.com"]
    mime = received.parsed()
    assert mime["From"] == "Hub <hub@example.com>"
    assert mime["To"] == "Ana <ana@example.com>, bob@example.com"
    assert mime["Cc"] == "carol@example.com"
    assert mime["Bcc"] is None  # envelope only
    assert mime["Reply-To"] == "sales@example.com"
    assert mime["X-Campaign"] == "spring"
    assert mime["Message-ID"] == out["message_id"]
    assert mime.get_body(("plain",)).get_content().strip() == "Hello Ana"
    assert "<b>Ana</b>" in mime.get_body(("html",)).get_content()
    [attachment] = list(mime.iter_attachments())
    assert attachment.get_filename() == "logo.png" and attachment.get_content() == b"\x89PNG fake"
    record = outbox.get_message(sqlite_store, out["id"])
    assert record["status"] == "sent" and record["provider_id"] == out["message_id"]


async def test_smtp_implicit_tls(
    sqlite_store: Store, tmp_path: Path, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server(security="tls", cert=cert) as sink:
        use_smtp(monkeypatch, sink.port, "tls", smtp_ca_file=str(cert[0]))
        out = await send(make_ctx(tmp_path, sqlite_store), **BASE, to="ana@example.com")
    assert out["status"] == "sent" and len(sink.messages) == 1


async def test_smtp_rerun_does_not_send_twice(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server() as sink:
        use_smtp(monkeypatch, sink.port)
        first = await send(make_ctx(tmp_path, sqlite_store), **BASE, to="ana@example.com")
        second = await send(make_ctx(tmp_path, sqlite_store), **BASE, to="ana@example.com")
        other_step = await send(make_ctx(tmp_path, sqlite_store, path="notify[1]"), **BASE, to="ana@example.com")
    assert second == {**first, "deduplicated": True}
    assert other_step["id"] != first["id"]
    assert len(sink.messages) == 2


async def test_smtp_partly_refused_recipients_are_reported(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server() as sink:
        sink.reject["ghost@example.com"] = "550 5.1.1 no such user"
        use_smtp(monkeypatch, sink.port)
        out = await send(make_ctx(tmp_path, sqlite_store), **BASE, to=["ana@example.com", "ghost@example.com"])
    assert out["accepted"] == ["ana@example.com"]
    assert out["refused"] == {"ghost@example.com": "550 5.1.1 no such user"}


async def test_smtp_everyone_refused_fails_for_good(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server() as sink:
        sink.reject["ghost@example.com"] = "550 5.1.1 no such user"
        use_smtp(monkeypatch, sink.port)
        with pytest.raises(ConnectorError, match="refused every recipient") as info:
            await send(make_ctx(tmp_path, sqlite_store), **BASE, to="ghost@example.com")
    assert info.value.retryable is False
    [record] = outbox.list_messages(sqlite_store)
    assert record["status"] == "failed" and record["error"]["type"] == "ConnectorError"


async def test_smtp_wrong_password_says_which_setting(
    sqlite_store: Store, tmp_path: Path, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server(security="starttls", cert=cert, users={"hub": "s3cret"}) as sink:
        use_smtp(
            monkeypatch, sink.port, "starttls", smtp_username="hub", smtp_password="nope", smtp_ca_file=str(cert[0])
        )
        with pytest.raises(ConnectorError, match="HUB_EMAIL_SMTP_PASSWORD") as info:
            await send(make_ctx(tmp_path, sqlite_store), **BASE, to="ana@example.com")
    assert info.value.retryable is False and sink.messages == []


async def test_smtp_untrusted_certificate(
    sqlite_store: Store, tmp_path: Path, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server(security="starttls", cert=cert) as sink:
        use_smtp(monkeypatch, sink.port, "starttls")
        with pytest.raises(ConnectorError, match="HUB_EMAIL_SMTP_CA_FILE") as info:
            await send(make_ctx(tmp_path, sqlite_store), **BASE, to="ana@example.com")
    assert info.value.retryable is False and sink.messages == []


async def test_smtp_server_down_is_retryable(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_smtp(monkeypatch, free_port())
    with pytest.raises(ConnectorError) as info:
        await send(make_ctx(tmp_path, sqlite_store), **BASE, to="ana@example.com")
    assert info.value.retryable is True
    # the next attempt takes the failed record over
    with smtp_server() as sink:
        use_smtp(monkeypatch, sink.port)
        out = await send(make_ctx(tmp_path, sqlite_store), **BASE, to="ana@example.com")
    assert out["status"] == "sent" and len(sink.messages) == 1
    assert outbox.get_message(sqlite_store, out["id"])["attempts"] == 2


async def test_smtp_without_host_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_EMAIL_BACKEND", "smtp")
    with pytest.raises(TaskError, match="HUB_EMAIL_SMTP_HOST"):
        await send(make_ctx(tmp_path, None), **BASE, to="ana@example.com")


# -- templates -------------------------------------------------------------------------------------------


async def test_file_templates_with_vars(sqlite_store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "base.html").write_text("<html><body>{% block body %}{% endblock %}</body></html>")
    (folder / "welcome.subject.txt").write_text("Welcome, {{ name }}!\n")
    (folder / "welcome.txt").write_text("Hi {{ name }}, your plan is {{ vars.plan | upper }}.")
    (folder / "welcome.html").write_text(
        '{% extends "base.html" %}{% block body %}<p>Hi {{ name }}</p>{% endblock %}'
    )
    out = await send(
        make_ctx(tmp_path, sqlite_store),
        to="ana@example.com",
        **{"from": "hub@example.com"},
        template="welcome",
        vars={"name": "<Ana>", "plan": "pro"},
    )
    message = outbox.get_message(sqlite_store, out["id"])["message"]
    assert message["subject"] == "Welcome, <Ana>!"
    assert message["text"] == "Hi <Ana>, your plan is PRO."
    assert message["html"] == "<html><body><p>Hi &lt;Ana&gt;</p></body></html>"


async def test_template_problems_say_how_to_fix(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "hello.txt").write_text("Hi {{ name }}")
    ctx = make_ctx(tmp_path, None)
    params = {"to": "ana@example.com", "from": "hub@example.com", "subject": "x", "backend": "smtp"}
    with pytest.raises(TaskError, match="'name' is undefined"):
        await send(ctx, **params, template="hello")
    with pytest.raises(TaskError, match="expected missing.txt and/or missing.html"):
        await send(ctx, **params, template="missing")
    with pytest.raises(TaskError, match="may not leave"):
        await send(ctx, **params, template="../secrets")
    (folder / "broken.txt").write_text("Hi {{ name }\n")
    with pytest.raises(TaskError, match="email template broken.txt line 1: ") as broken:
        await send(ctx, **params, template="broken")
    assert broken.value.retryable is False  # a retry cannot fix the template
    (folder / "partial.txt").write_text("{% include 'footer.txt' %}")
    with pytest.raises(TaskError, match="email template partial.txt: 'footer.txt' not found"):
        await send(ctx, **params, template="partial")


# -- validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"to": "not an address", "subject": "x", "text": "y"}, "is not an email address"),
        ({"to": "a@example.com", "subject": "x\nBcc: evil@example.com", "text": "y"}, "line breaks"),
        ({"to": "a@example.com", "subject": "x", "text": "y", "headers": {"Bcc": "e@example.com"}}, "own fields"),
        ({"to": "a@example.com", "subject": "x", "text": "y", "headers": {"X-A": "1\r\nBcc: e@x.com"}}, "line breaks"),
        ({"to": "a@example.com", "subject": "x", "text": "y", "attachments": [{"content": "eA=="}]}, "needs a filename"),
    ],
)
def test_params_validation(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmailSendParams.model_validate(params)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"subject": "x", "text": "y"}, "at least one recipient"),
        ({"to": "ana@example.com", "subject": "x"}, "give text, html or a template"),
    ],
)
async def test_checked_when_the_step_runs(tmp_path: Path, sqlite_store: Store, params: dict, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        await send(make_ctx(tmp_path, sqlite_store), **{"from": "hub@example.com"}, **params)


async def test_attachment_outside_allowed_folders(tmp_path: Path, sqlite_store: Store) -> None:
    with pytest.raises(TaskError, match="HUB_EMAIL_ATTACHMENT_DIRS"):
        await send(make_ctx(tmp_path, sqlite_store), **BASE, to="a@example.com", attachments=[{"path": "/etc/passwd"}])


async def test_sender_is_required(tmp_path: Path, sqlite_store: Store) -> None:
    with pytest.raises(TaskError, match="HUB_EMAIL_FROM_ADDRESS"):
        await send(make_ctx(tmp_path, sqlite_store), to="a@example.com", subject="s", text="t")
