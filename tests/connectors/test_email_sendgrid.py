"""email.send through the real sendgrid library against a fake v3 Mail Send API, and the signed
event webhook feeding delivery status back into the records."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient

from connectors.email import outbox
from connectors.email.api import SIGNATURE_HEADER, TIMESTAMP_HEADER, email_router
from connectors.email.message import EmailSendParams
from connectors.email.tasks import EmailSend
from hub.errors import ConnectorError, TaskError
from hub.net import BlockedAddress
from hub.settings import HubSettings
from hub.store.store import Store
from hub.tasks.base import TaskContext
from tests.fakes.sendgrid_api import FakeSendGrid
from tests.fakes.server import serve

pytestmark = pytest.mark.anyio

BASE = {"from": "Hub <hub@example.com>", "subject": "Your report", "text": "See attached", "html": "<p>See attached</p>"}


@pytest.fixture
def sendgrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSendGrid]:
    fake = FakeSendGrid(api_keys={"SG.test-key"})
    for name in ("BACKEND", "SMTP_HOST", "SENDGRID_SANDBOX"):
        monkeypatch.delenv(f"HUB_EMAIL_{name}", raising=False)
    with serve(fake.app) as url:
        monkeypatch.setenv("HUB_EMAIL_SENDGRID_API_KEY", "SG.test-key")
        monkeypatch.setenv("HUB_EMAIL_SENDGRID_HOST", url)
        monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
        yield fake


def make_ctx(tmp_path: Path, store: Store | None, path: str = "notify") -> TaskContext:
    return TaskContext(
        execution_id="exec42",
        namespace="ops",
        flow_id="report",
        task_id=path,
        path=path,
        attempt=2,
        settings=HubSettings(home=tmp_path),
        store=store,
    )


async def send(ctx: TaskContext, **params: object) -> dict:
    return await EmailSend().run(ctx, EmailSendParams.model_validate(params))


async def test_send_through_sendgrid(sendgrid: FakeSendGrid, sqlite_store: Store, tmp_path: Path) -> None:
    out = await send(
        make_ctx(tmp_path, sqlite_store),
        **BASE,
        to=["Ana <ana@example.com>", "bob@example.com"],
        cc=["ANA@example.com", "carol@example.com"],  # a repeat across to/cc is sent once
        bcc="audit@example.com",
        reply_to="Sales <sales@example.com>",
        headers={"X-Campaign": "q3"},
        categories=["reports"],
        attachments=[{"content": base64.b64encode(b"%PDF-1.4").decode(), "filename": "q3.pdf"}],
    )
    assert out["backend"] == "sendgrid" and out["status"] == "sent"
    [request] = sendgrid.requests
    assert request["auth"] == "Bearer SG.test-key"
    assert request["headers"]["user-agent"].startswith("sendgrid/")
    body = request["body"]
    assert body["personalizations"] == [
        {
            "to": [{"email": "ana@example.com", "name": "Ana"}, {"email": "bob@example.com"}],
            "cc": [{"email": "carol@example.com"}],
            "bcc": [{"email": "audit@example.com"}],
        }
    ]
    assert body["from"] == {"email": "hub@example.com", "name": "Hub"}
    assert body["reply_to"] == {"email": "sales@example.com", "name": "Sales"}
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["attachments"] == [
        {"content": "JVBERi0xLjQ=", "filename": "q3.pdf", "type": "application/pdf", "disposition": "attachment"}
    ]
    assert body["headers"] == {"X-Campaign": "q3"} and body["categories"] == ["reports"]
    assert body["custom_args"] == {
        "hub_message_id": out["id"],
        "hub_execution_id": "exec42",
        "hub_flow": "ops.report",
        "hub_step": "notify",
        "hub_attempt": "2",
    }
    assert "mail_settings" not in body
    [delivered] = sendgrid.delivered
    assert out["provider_id"] == delivered["id"]
    record = outbox.get_message(sqlite_store, out["id"])
    assert record["status"] == "sent" and record["provider_id"] == delivered["id"]

    again = await send(make_ctx(tmp_path, sqlite_store), **BASE, to="ana@example.com")
    assert again["deduplicated"] is True and len(sendgrid.requests) == 1


async def test_sandbox_mode(sendgrid: FakeSendGrid, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_EMAIL_SENDGRID_SANDBOX", "true")
    out = await send(make_ctx(tmp_path, None), **BASE, to="ana@example.com")
    assert out["status"] == "sent" and out["provider_id"] is None
    assert sendgrid.delivered == [] and len(sendgrid.sandboxed) == 1
    assert sendgrid.sandboxed[0]["mail_settings"] == {"sandbox_mode": {"enable": True}}
    # a step can turn it off for itself
    await send(make_ctx(tmp_path, None, path="real"), **BASE, to="ana@example.com", sandbox=False)
    assert len(sendgrid.delivered) == 1


async def test_bad_key_is_not_retried(
    sendgrid: FakeSendGrid, sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_EMAIL_SENDGRID_API_KEY", "SG.revoked")
    with pytest.raises(ConnectorError) as info:
        await send(make_ctx(tmp_path, sqlite_store), **BASE, to="ana@example.com")
    error = info.value
    assert error.status == 401 and error.retryable is False
    assert "authorization grant is invalid" in str(error) and "HUB_EMAIL_SENDGRID_API_KEY" in str(error)
    assert "SG.revoked" not in str(error)
    [record] = outbox.list_messages(sqlite_store)
    assert record["status"] == "failed"


async def test_rate_limit_and_server_errors_are_retryable(sendgrid: FakeSendGrid, tmp_path: Path) -> None:
    sendgrid.rate_limit(reset_in=30)
    with pytest.raises(ConnectorError) as info:
        await send(make_ctx(tmp_path, None), **BASE, to="ana@example.com")
    assert info.value.status == 429 and info.value.retryable
    assert info.value.retry_after is not None and 0 < info.value.retry_after <= 30
    sendgrid.server_error(503)
    with pytest.raises(ConnectorError) as info:
        await send(make_ctx(tmp_path, None), **BASE, to="ana@example.com")
    assert info.value.status == 503 and info.value.retryable


async def test_validation_error_body_is_surfaced(sendgrid: FakeSendGrid, tmp_path: Path) -> None:
    sendgrid.reject(400, "The from address does not match a verified Sender Identity.", "from")
    with pytest.raises(ConnectorError, match="from: The from address does not match") as info:
        await send(make_ctx(tmp_path, None), **BASE, to="ana@example.com")
    assert info.value.status == 400 and not info.value.retryable
    # an empty text part next to HTML is left out (SendGrid refuses empty content values)
    await send(make_ctx(tmp_path, None, path="html_only"), **{**BASE, "text": ""}, to="ana@example.com")
    assert [c["type"] for c in sendgrid.delivered[-1]["content"]] == ["text/html"]


async def test_cc_only_is_refused_before_calling(sendgrid: FakeSendGrid, tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="at least one 'to'"):
        await send(make_ctx(tmp_path, None), **BASE, cc="ana@example.com")
    assert sendgrid.requests == []


async def test_sendgrid_host_goes_through_the_guard(
    sendgrid: FakeSendGrid, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_HTTP_ALLOW_HOSTS")
    with pytest.raises(BlockedAddress):
        await send(make_ctx(tmp_path, None), **BASE, to="ana@example.com")
    assert sendgrid.requests == []


# -- event webhook ---------------------------------------------------------------------------------------


@pytest.fixture
def signing(monkeypatch: pytest.MonkeyPatch) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    monkeypatch.setenv("HUB_EMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(public).decode())
    return key


def signed(key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: str = "1700000000") -> dict[str, str]:
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: timestamp}


def api(store: Store) -> TestClient:
    app = FastAPI()
    app.state.store = store
    app.include_router(email_router())
    return TestClient(app)


async def test_event_webhook_updates_delivery(
    sendgrid: FakeSendGrid, signing: ec.EllipticCurvePrivateKey, sqlite_store: Store, tmp_path: Path
) -> None:
    out = await send(make_ctx(tmp_path, sqlite_store), **BASE, to=["ana@example.com", "bob@example.com"])
    events = [
        {"email": "ana@example.com", "timestamp": 1700000100, "event": "processed", "sg_event_id": "e1",
         "sg_message_id": f"{out['provider_id']}.filter0001", "hub_message_id": out["id"]},
        {"email": "ana@example.com", "timestamp": 1700000200, "event": "delivered", "sg_event_id": "e2",
         "sg_message_id": f"{out['provider_id']}.filter0001", "hub_message_id": out["id"], "response": "250 OK"},
        {"email": "bob@example.com", "timestamp": 1700000150, "event": "bounce", "sg_event_id": "e3",
         "sg_message_id": f"{out['provider_id']}.filter0002", "reason": "550 5.1.1 unknown user", "type": "bounce"},
        {"email": "zed@example.com", "timestamp": 1700000150, "event": "delivered", "sg_event_id": "e4",
         "sg_message_id": "someone-else.filter"},
    ]
    body = json.dumps(events).encode()
    client = api(sqlite_store)
    response = client.post("/v1/email/sendgrid/events", content=body, headers=signed(signing, body))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 4, "matched": 3}
    # SendGrid retries deliveries: the same events again change nothing
    client.post("/v1/email/sendgrid/events", content=body, headers=signed(signing, body))

    record = client.get(f"/v1/email/messages/{out['id']}").json()
    assert record["delivery"] == {
        "ana@example.com": {"event": "delivered", "timestamp": 1700000200},
        "bob@example.com": {"event": "bounce", "timestamp": 1700000150},
    }
    assert [e["sg_event_id"] for e in record["events"]] == ["e1", "e2", "e3"]
    assert record["events"][2]["reason"] == "550 5.1.1 unknown user"


def test_event_webhook_rejects_bad_signatures(
    signing: ec.EllipticCurvePrivateKey, sqlite_store: Store
) -> None:
    client = api(sqlite_store)
    body = b'[{"event": "delivered"}]'
    headers = signed(signing, body)
    assert client.post("/v1/email/sendgrid/events", content=body + b" ", headers=headers).status_code == 403
    headers[TIMESTAMP_HEADER] = "1700000001"
    assert client.post("/v1/email/sendgrid/events", content=body, headers=headers).status_code == 403
    assert client.post("/v1/email/sendgrid/events", content=body).status_code == 403
    other = ec.generate_private_key(ec.SECP256R1())
    assert client.post("/v1/email/sendgrid/events", content=body, headers=signed(other, body)).status_code == 403


def test_event_webhook_unconfigured_says_which_setting(sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_EMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", raising=False)
    response = api(sqlite_store).post("/v1/email/sendgrid/events", content=b"[]")
    assert response.status_code == 503
    assert "HUB_EMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY" in response.json()["detail"]


async def test_outbox_endpoints(sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BACKEND", "SMTP_HOST", "SENDGRID_API_KEY"):
        monkeypatch.delenv(f"HUB_EMAIL_{name}", raising=False)
    out = await send(
        make_ctx(tmp_path, sqlite_store),
        **BASE,
        to="ana@example.com",
        attachments=[{"content": base64.b64encode(b"hello").decode(), "filename": "a.txt"}],
    )
    client = api(sqlite_store)
    [listed] = client.get("/v1/email/outbox").json()
    assert listed["id"] == out["id"] and listed["subject"] == "Your report"
    assert client.get("/v1/email/messages", params={"status": "sent"}).json() == []
    attachment = client.get(f"/v1/email/messages/{out['id']}/attachments/0")
    assert attachment.content == b"hello" and "a.txt" in attachment.headers["content-disposition"]
    assert client.get("/v1/email/messages/nope").status_code == 404
    assert client.get("/v1/email/messages", params={"offset": -1}).status_code == 422
    assert client.get("/v1/email/outbox", params={"limit": 0}).status_code == 422


def test_the_hub_api_serves_the_email_endpoints(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.api.app import create_app
    from hub.store.api_store import ApiStore
    from hub.testing import make_engine

    monkeypatch.delenv("HUB_EMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", raising=False)
    engine = make_engine(sqlite_store, home=tmp_path)
    reader = ApiStore(engine.store).create_key("reader", ["read"])[1]
    with TestClient(create_app(engine, auth="auto", background=False)) as client:
        assert client.get("/v1/email/outbox").status_code == 401
        assert client.get("/v1/email/outbox", headers={"Authorization": f"Bearer {reader}"}).json() == []
        # the webhook takes no API key: SendGrid's signature authenticates it
        assert client.post("/v1/email/sendgrid/events", content=b"[]").status_code == 503
