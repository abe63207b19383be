"""Settings of the web console (``HUB_CONSOLE_*``) and the key that signs its session cookies."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    if settings.secret is not None:
        return settings.secret.get_secret_value().encode()
    path = home / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key
