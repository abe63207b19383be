"""Approval settings (``HUB_APPROVAL_*``) and the key that signs approval links."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.core.keys import signing_key as file_key
from hub.flow.durations import parse_duration

KEY_FILE = "approval.key"


class ApprovalSettings(BaseSettings):
    """Where links point, who belongs to which group, and the secrets that authenticate decisions."""

    model_config = SettingsConfigDict(env_prefix="HUB_APPROVAL_", extra="ignore")

    secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key of approval links. Default: a key generated once in <home>/approval.key "
        "(set this when several machines serve links).",
    )
    public_url: str = Field(
        "http://127.0.0.1:8080",
        description="The hub's address as approvers reach it (links in emails and Slack); "
        "the default is where `hub serve` listens (its --port). Set it for workers and behind a proxy.",
    )
    link_ttl: float = Field(
        7 * 86400.0, description="Lifetime of an approval link when the gate has no timeout: 3600, 90m, 7d ..."
    )
    groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Approver groups as JSON: {"finance": ["ana@example.com", "U024BE7LH", "key:ops-bot"]}.',
    )
    people: dict[str, list[str]] = Field(
        default_factory=dict,
        description='One person\'s identities as JSON, so two channels count as one vote: '
        '{"ana": ["ana@example.com", "U024BE7LH", "key:ana-laptop"]}.',
    )
    email_from: str | None = Field(None, description="Sender of approval emails; default HUB_EMAIL_FROM_ADDRESS.")
    slack_signing_secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("HUB_SLACK_SIGNING_SECRET", "HUB_APPROVAL_SLACK_SIGNING_SECRET"),
        description="The Slack app's signing secret (Basic Information → App Credentials).",
    )
    slack_max_age: float = Field(300.0, description="Oldest Slack request timestamp accepted, in seconds.")

    @field_validator("link_ttl", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


def signing_key(settings: ApprovalSettings, home: Path) -> bytes:
    """``HUB_APPROVAL_SECRET``, or the key in ``<home>/approval.key`` (created on first use)."""
    return file_key(settings.secret, home / KEY_FILE)
