"""Email settings (``HUB_EMAIL_*``). Nothing configured means the ``outbox`` backend."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Backend = Literal["outbox", "smtp", "sendgrid"]


class EmailSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_EMAIL_", extra="ignore")

    backend: Literal["auto", "outbox", "smtp", "sendgrid"] = Field(
        "auto",
        description="auto: sendgrid when HUB_EMAIL_SENDGRID_API_KEY is set, else smtp when "
        "HUB_EMAIL_SMTP_HOST is set, else outbox (stored, not sent).",
    )
    from_address: str | None = Field(None, description="Default sender, e.g. 'Hub <hub@example.com>'.")
    templates_dir: Path = Field(Path("templates/email"), description="Folder of email templates.")
    attachment_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [Path(".")],
        description="Comma-separated folders that attachment paths must be inside.",
    )
    max_attachment_bytes: int = Field(20 * 1024 * 1024, description="Largest total size of a message's attachments.")

    sendgrid_api_key: SecretStr | None = None
    sendgrid_host: str = Field("https://api.sendgrid.com", description="SendGrid API base URL (EU: https://api.eu.sendgrid.com).")
    sendgrid_sandbox: bool = Field(False, description="Validate messages with SendGrid without delivering them.")
    sendgrid_timeout: float = 30.0
    sendgrid_webhook_public_key: str | None = Field(
        None, description="Event webhook verification key (base64 DER, from SendGrid's Mail Settings)."
    )

    smtp_host: str | None = None
    smtp_port: int | None = Field(None, description="Default 587 (starttls), 465 (tls) or 25 (none).")
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = 30.0
    smtp_ca_file: Path | None = Field(None, description="CA bundle to verify the SMTP server's certificate.")

    @field_validator("attachment_dirs", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [Path(part.strip()) for part in value.split(",") if part.strip()]
        return value

    def resolved_backend(self) -> Backend:
        if self.backend != "auto":
            return self.backend
        if self.sendgrid_api_key is not None:
            return "sendgrid"
        if self.smtp_host:
            return "smtp"
        return "outbox"

    def resolved_smtp_port(self) -> int:
        if self.smtp_port:
            return self.smtp_port
        return {"starttls": 587, "tls": 465, "none": 25}[self.smtp_security]
