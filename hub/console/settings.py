"""Settings of the web console (``HUB_CONSOLE_*``) and the key that signs its session cookies."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.core.keys import signing_key as file_key

KEY_FILE = "console.key"


class ConsoleSettings(BaseSettings):
    """How the console keeps people signed in."""

    model_config = SettingsConfigDict(env_prefix="HUB_CONSOLE_", extra="ignore")

    secret: SecretStr | None = Field(
        None, description="Signs the session cookies; give every API replica the same one (default: a key "
        "made once in <HUB_HOME>/console.key)."
    )
    session_ttl: float = Field(12 * 3600.0, gt=0, description="Seconds a sign-in lasts.")
    secure_cookie: bool | None = Field(
        None, description="Mark the cookie Secure (default: when the request came over https)."
    )
    page_size: int = Field(50, ge=10, le=500, description="Rows per page of the executions list.")


def signing_key(settings: ConsoleSettings, home: Path) -> bytes:
    """``HUB_CONSOLE_SECRET``, or the key in ``<home>/console.key`` (created on first use)."""
    return file_key(settings.secret, home / KEY_FILE)
