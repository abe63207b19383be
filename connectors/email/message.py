"""``email.send`` parameters, and the one message shape every backend sends."""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
from dataclasses import dataclass, field
from email.message import EmailMessage as MimeMessage
from email.utils import formataddr, formatdate, getaddresses, parseaddr
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from connectors.email.settings import EmailSettings
from connectors.email.templates import render_template
from hub.core.errors import TaskError
from hub.core.tasks import Params

# Headers the connector writes itself; a step may not set them through ``headers``.
RESERVED_HEADERS = {
    "from", "to", "cc", "bcc", "reply-to", "subject", "message-id", "date", "mime-version",
    "content-type", "content-transfer-encoding", "content-disposition",
}


class AttachmentParams(Params):
    """A file to attach: a ``path`` (inside HUB_EMAIL_ATTACHMENT_DIRS) or base64 ``content``."""

    path: str | None = None
    content: str | None = Field(None, description="Base64 content.")
    filename: str | None = Field(None, description="Name shown to the recipient (default: the path's name).")
    content_type: str | None = Field(None, description="MIME type (default: guessed from the file name).")
    disposition: Literal["attachment", "inline"] = "attachment"
    content_id: str | None = Field(None, description="For inline images: referenced as cid:<content_id>.")

    @model_validator(mode="after")
    def _one_source(self) -> AttachmentParams:
        if (self.path is None) == (self.content is None):
            raise ValueError("give exactly one of path and content")
        if self.content is not None and not self.filename:
            raise ValueError("an attachment given as content needs a filename")
        return self


def _address_list(value: Any) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for name, addr in getaddresses([str(i) for i in items]):
        if not addr:
            continue
        _check_address(addr)
        out.append(formataddr((name, addr)) if name else addr)
    return out


def _check_address(addr: str) -> None:
    local, at, domain = addr.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in addr) or "\r" in addr or "\n" in addr:
        raise ValueError(f"{addr!r} is not an email address")


class EmailSendParams(Params):
    to: list[str] = Field(default_factory=list, description="Recipients: an address, a list, or 'a@x, b@y'.")
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    from_: str | None = Field(None, alias="from", description="Sender; default HUB_EMAIL_FROM_ADDRESS.")
    reply_to: str | None = None
    subject: str | None = Field(None, description="Subject; overrides the template's subject.")
    text: str | None = Field(None, description="Plain-text body; overrides the template's.")
    html: str | None = Field(None, description="HTML body; overrides the template's.")
    template: str | None = Field(None, description="A template name in HUB_EMAIL_TEMPLATES_DIR.")
    vars: dict[str, Any] = Field(default_factory=dict, description="Values the template sees.")
    attachments: list[AttachmentParams] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers (X-...).")
    categories: list[str] = Field(default_factory=list, description="SendGrid categories.")
    backend: Literal["outbox", "smtp", "sendgrid"] | None = Field(
        None, description="Force a backend; default from HUB_EMAIL_BACKEND."
    )
    sandbox: bool | None = Field(None, description="SendGrid sandbox mode; default HUB_EMAIL_SENDGRID_SANDBOX.")

    @field_validator("to", "cc", "bcc", mode="before")
    @classmethod
    def _addresses(cls, value: Any) -> list[str]:
        return _address_list(value)

    @field_validator("from_", "reply_to")
    @classmethod
    def _one_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        found = _address_list(value)
        if len(found) != 1:
            raise ValueError(f"{value!r} must be exactly one email address")
        return found[0]

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, content in value.items():
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set from the step's own fields; use them instead")
            if not name or any(c in name for c in ": \r\n") or "\r" in content or "\n" in content:
                raise ValueError(f"header {name!r}: names may not contain ':' or spaces, values no line breaks")
        return value

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("the subject may not contain line breaks")
        return value

@dataclass
class Attachment:
    filename: str
    content: bytes
    content_type: str
    disposition: str = "attachment"
    content_id: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "disposition": self.disposition,
            "content_id": self.content_id,
            "size": len(self.content),
            "sha256": hashlib.sha256(self.content).hexdigest(),
        }


@dataclass
class Message:
    """A message ready for any backend. ``to``/``cc``/``bcc`` hold ``Name <addr>`` forms."""

    sender: str
    to: list[str]
    subject: str
    message_id: str
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    reply_to: str | None = None
    text: str | None = None
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)

    def recipients(self) -> list[str]:
        """Every envelope recipient (bare addresses, each once, Bcc included)."""
        seen: list[str] = []
        for entry in self.to + self.cc + self.bcc:
            addr = parseaddr(entry)[1].lower()
            if addr not in seen:
                seen.append(addr)
        return seen

    def describe(self) -> dict[str, Any]:
        """The stored form: everything but attachment bytes (those are described)."""
        return {
            "from": self.sender,
            "to": self.to,
            "cc": self.cc,
            "bcc": self.bcc,
            "reply_to": self.reply_to,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "headers": self.headers,
            "categories": self.categories,
            "message_id": self.message_id,
            "attachments": [a.describe() for a in self.attachments],
        }

    def to_mime(self) -> MimeMessage:
        """RFC 5322 form for SMTP. Bcc recipients are envelope-only, never a header."""
        mime = MimeMessage()
        mime["From"] = self.sender
        if self.to:
            mime["To"] = ", ".join(self.to)
        if self.cc:
            mime["Cc"] = ", ".join(self.cc)
        if self.reply_to:
            mime["Reply-To"] = self.reply_to
        mime["Subject"] = self.subject
        mime["Message-ID"] = self.message_id
        mime["Date"] = formatdate(localtime=False, usegmt=True)
        for name, value in self.headers.items():
            mime[name] = value
        if self.text is None and self.html is not None:
            mime.set_content(self.html, subtype="html")
        else:
            mime.set_content(self.text or "")
            if self.html is not None:
                mime.add_alternative(self.html, subtype="html")
        for att in self.attachments:
            maintype, _, subtype = att.content_type.partition("/")
            mime.add_attachment(
                att.content, maintype=maintype, subtype=subtype or "octet-stream",
                filename=att.filename, disposition=att.disposition, cid=f"<{att.content_id}>" if att.content_id else None,
            )
        return mime


def message_id_for(idempotency_key: str, sender: str) -> str:
    """A Message-ID that is the same on every re-run of a step, so receivers can drop duplicates."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "hub.local"
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def build_message(params: EmailSendParams, settings: EmailSettings, idempotency_key: str) -> Message:
    """Apply defaults and templates, load attachments; raises TaskError saying what to fix."""
    # checked here, not in the model: at load time a templated 'to' or 'text' is not known yet
    if not (params.to or params.cc or params.bcc):
        raise TaskError("email.send needs at least one recipient in to, cc or bcc", retryable=False)
    if not params.template and not (params.text or params.html):
        raise TaskError("email.send needs a body: give text, html or a template", retryable=False)
    sender = params.from_ or settings.from_address
    if not sender:
        raise TaskError("email.send needs a sender: give from, or set HUB_EMAIL_FROM_ADDRESS", retryable=False)
    parts: dict[str, str] = {}
    if params.template:
        parts = render_template(params.template, params.vars, settings.templates_dir)
    subject = params.subject if params.subject is not None else parts.get("subject")
    if not subject:
        raise TaskError(
            "email.send needs a subject: give subject, or add a <template>.subject.txt", retryable=False
        )
    if "\n" in subject or "\r" in subject:
        raise TaskError("the rendered subject contains a line break", retryable=False)
    return Message(
        sender=EmailSendParams._one_address(sender) or sender,
        to=params.to,
        cc=params.cc,
        bcc=params.bcc,
        reply_to=params.reply_to,
        subject=subject,
        text=params.text if params.text is not None else parts.get("text"),
        html=params.html if params.html is not None else parts.get("html"),
        headers=dict(params.headers),
        attachments=load_attachments(params.attachments, settings),
        categories=list(params.categories),
        message_id=message_id_for(idempotency_key, sender),
    )


def load_attachments(items: list[AttachmentParams], settings: EmailSettings) -> list[Attachment]:
    roots = [root.resolve() for root in settings.attachment_dirs]
    out: list[Attachment] = []
    total = 0
    for item in items:
        if item.path is not None:
            path = Path(item.path).expanduser().resolve()
            if not any(path.is_relative_to(root) for root in roots):
                raise TaskError(
                    f"attachment {item.path} is outside the allowed folders "
                    f"({', '.join(map(str, roots))}); move it there or add its folder to HUB_EMAIL_ATTACHMENT_DIRS",
                    retryable=False,
                )
            if not path.is_file():
                raise TaskError(f"attachment {item.path} does not exist", retryable=False)
            content = path.read_bytes()
            filename = item.filename or path.name
        else:
            try:
                content = base64.b64decode(item.content or "", validate=True)
            except (binascii.Error, ValueError):
                raise TaskError(f"attachment {item.filename}: content is not valid base64", retryable=False) from None
            filename = item.filename or "attachment"
        total += len(content)
        if total > settings.max_attachment_bytes:
            raise TaskError(
                f"attachments exceed {settings.max_attachment_bytes} bytes (HUB_EMAIL_MAX_ATTACHMENT_BYTES)",
                retryable=False,
            )
        ctype = item.content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        out.append(Attachment(filename, content, ctype, item.disposition, item.content_id))
    return out
