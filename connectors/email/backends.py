"""How a message leaves: SMTP (smtplib in a thread) or SendGrid (the sendgrid library, v3 mail send).

The ``outbox`` backend has no code here: the record :mod:`connectors.email.outbox` writes is the
whole of it. Each backend's ``send`` returns a :class:`SendResult` or raises
:class:`~hub.errors.ConnectorError` (retryable for 4xx SMTP replies, 429, 5xx and network
failures) or :class:`~hub.errors.TaskError` for configuration that must be fixed.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
import time
import urllib.error
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any

from connectors.email.message import Message
from connectors.email.settings import EmailSettings
from hub.core.errors import ConnectorError, TaskError
from hub.net import Guard


@dataclass
class SendResult:
    provider_id: str | None
    accepted: list[str]
    refused: dict[str, str] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


# -- SMTP -------------------------------------------------------------------------------------------


class SmtpBackend:
    name = "smtp"

    def __init__(self, settings: EmailSettings):
        if not settings.smtp_host:
            raise TaskError("SMTP is not configured: set HUB_EMAIL_SMTP_HOST (and _PORT, _SECURITY, "
                            "_USERNAME, _PASSWORD as needed)", retryable=False)
        self.settings = settings

    async def send(self, message: Message, meta: dict[str, str]) -> SendResult:
        return await asyncio.to_thread(self._send, message)

    def _tls_context(self) -> ssl.SSLContext:
        ca = self.settings.smtp_ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _send(self, message: Message) -> SendResult:
        s = self.settings
        host, port = s.smtp_host or "", s.resolved_smtp_port()
        where = f"SMTP {host}:{port}"
        try:
            if s.smtp_security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=s.smtp_timeout, context=self._tls_context())
            else:
                smtp = smtplib.SMTP(host, port, timeout=s.smtp_timeout)
            with smtp:
                smtp.ehlo()
                if s.smtp_security == "starttls":
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo()
                if s.smtp_username:
                    password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                    smtp.login(s.smtp_username, password)
                recipients = message.recipients()
                refused = smtp.send_message(
                    message.to_mime(), from_addr=parseaddr(message.sender)[1], to_addrs=recipients
                )
        except smtplib.SMTPAuthenticationError as exc:
            raise ConnectorError(
                f"{where} refused the login for {s.smtp_username!r}: {exc.smtp_code} {_text(exc.smtp_error)}; "
                "check HUB_EMAIL_SMTP_USERNAME and HUB_EMAIL_SMTP_PASSWORD",
                status=exc.smtp_code, retryable=False,
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ConnectorError(
                f"{where}: {exc}; set HUB_EMAIL_SMTP_SECURITY to what the server offers (starttls, tls or none)",
                retryable=False,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {addr: f"{code} {_text(text)}" for addr, (code, text) in exc.recipients.items()}
            temporary = all(400 <= code < 500 for code, _ in exc.recipients.values())
            raise ConnectorError(
                f"{where} refused every recipient: {codes}", status=None, retryable=temporary, data={"refused": codes}
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise ConnectorError(
                f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}",
                status=exc.smtp_code, retryable=400 <= exc.smtp_code < 500,
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectorError(
                f"{where}: the server's certificate is not trusted ({exc.verify_message}); "
                "set HUB_EMAIL_SMTP_CA_FILE to its CA", retryable=False,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise ConnectorError(f"{where} failed: {type(exc).__name__}: {exc}") from None
        refused_text = {addr: f"{code} {_text(text)}" for addr, (code, text) in refused.items()}
        return SendResult(
            provider_id=message.message_id,
            accepted=[r for r in recipients if r not in refused],
            refused=refused_text,
        )


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


# -- SendGrid ---------------------------------------------------------------------------------------


def _party(entry: str) -> dict[str, str]:
    name, addr = parseaddr(entry)
    return {"email": addr, "name": name} if name else {"email": addr}


def sendgrid_payload(message: Message, custom_args: dict[str, str], sandbox: bool) -> dict[str, Any]:
    """The v3 ``/mail/send`` request body for a message."""
    seen: set[str] = set()
    personalization: dict[str, Any] = {}
    for kind, entries in (("to", message.to), ("cc", message.cc), ("bcc", message.bcc)):
        unique = []
        for entry in entries:
            addr = parseaddr(entry)[1].lower()
            if addr not in seen:  # SendGrid rejects an address that appears twice
                seen.add(addr)
                unique.append(_party(entry))
        if unique:
            personalization[kind] = unique
    if "to" not in personalization:
        raise TaskError("SendGrid needs at least one 'to' recipient (cc/bcc only is not accepted)", retryable=False)
    content = []
    if message.text or (message.text is not None and not message.html):
        content.append({"type": "text/plain", "value": message.text})
    if message.html:
        content.append({"type": "text/html", "value": message.html})
    payload: dict[str, Any] = {
        "personalizations": [personalization],
        "from": _party(message.sender),
        "subject": message.subject,
        "content": content,
        "custom_args": {k: str(v) for k, v in custom_args.items() if v is not None},
    }
    if message.reply_to:
        payload["reply_to"] = _party(message.reply_to)
    if message.headers:
        payload["headers"] = dict(message.headers)
    if message.categories:
        payload["categories"] = message.categories[:10]
    if message.attachments:
        import base64

        payload["attachments"] = [
            {
                "content": base64.b64encode(a.content).decode(),
                "filename": a.filename,
                "type": a.content_type,
                "disposition": a.disposition,
                **({"content_id": a.content_id} if a.content_id else {}),
            }
            for a in message.attachments
        ]
    if sandbox:
        payload["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return payload


class SendGridBackend:
    name = "sendgrid"

    def __init__(self, settings: EmailSettings, guard: Guard | None = None):
        if settings.sendgrid_api_key is None:
            raise TaskError("SendGrid is not configured: set HUB_EMAIL_SENDGRID_API_KEY", retryable=False)
        self.settings = settings
        self.guard = guard or Guard.from_settings()

    async def send(self, message: Message, meta: dict[str, str], sandbox: bool | None = None) -> SendResult:
        from sendgrid import SendGridAPIClient

        sandbox = self.settings.sendgrid_sandbox if sandbox is None else sandbox
        payload = sendgrid_payload(message, meta, sandbox)
        # the sendgrid library speaks urllib, which the guard cannot wrap: check the host first
        await self.guard.check_url(self.settings.sendgrid_host)
        key = self.settings.sendgrid_api_key.get_secret_value()  # type: ignore[union-attr]
        client = SendGridAPIClient(api_key=key, host=self.settings.sendgrid_host)
        try:
            response = await asyncio.to_thread(
                client.client.mail.send.post, request_body=payload, timeout=self.settings.sendgrid_timeout
            )
        except urllib.error.URLError as exc:
            raise ConnectorError(f"SendGrid unreachable at {self.settings.sendgrid_host}: {exc.reason}") from None
        except (TimeoutError, OSError) as exc:
            raise ConnectorError(f"SendGrid mail send failed: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # python_http_client raises its HTTPError subclasses
            status = getattr(exc, "status_code", None)
            if status is None:
                raise
            raise _sendgrid_error(int(status), getattr(exc, "body", b""), getattr(exc, "headers", None)) from None
        provider_id = response.headers.get("X-Message-Id") if response.headers else None
        return SendResult(
            provider_id=provider_id,
            accepted=message.recipients(),
            detail={"status": response.status_code, "sandbox": sandbox},
        )


_SENDGRID_HINTS = {
    401: "check HUB_EMAIL_SENDGRID_API_KEY",
    403: "the API key lacks the mail.send permission, or the sender identity is not verified",
    413: "the message (with attachments) is larger than SendGrid accepts (30 MB)",
}


def _sendgrid_error(status: int, body: Any, headers: Any) -> ConnectorError:
    messages: list[str] = []
    try:
        data = json.loads(body.decode() if isinstance(body, bytes) else body or "{}")
        for err in data.get("errors", []):
            text = err.get("message", "")
            if err.get("field"):
                text = f"{err['field']}: {text}"
            messages.append(text)
    except (ValueError, AttributeError):
        data = None
    detail = "; ".join(messages) or _text(body)[:300]
    hint = _SENDGRID_HINTS.get(status)
    retry_after = None
    if status == 429 and headers is not None:
        reset = headers.get("X-RateLimit-Reset")
        try:
            retry_after = max(0.0, float(reset) - time.time()) if reset else None
        except ValueError:
            retry_after = None
    return ConnectorError(
        f"SendGrid mail send answered {status}: {detail}" + (f" ({hint})" if hint else ""),
        status=status,
        retry_after=retry_after,
        data={"errors": data.get("errors") if isinstance(data, dict) else None},
    )
