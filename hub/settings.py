"""Settings from the environment (``HUB_*``) with defaults for the embedded deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class HubSettings(BaseSettings):
    """Everything the hub reads from its environment, in one place.

    The embedded default needs none of it: state goes to ``.hub/hub.db`` (SQLite) under the
    current directory and executions run in process.
    """

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    home: Path = Field(Path(".hub"), description="Directory for the SQLite file, blobs and outbox.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<home>/hub.db. PostgreSQL: postgresql+psycopg://..."
    )
    redis_url: str | None = Field(
        None, description="Redis URL (redis://, rediss:// or unix://); when set, executions are queued on arq."
    )
    secrets_file: Path | None = Field(
        None, description="A NAME=value file read by secret('NAME'); default <home>/secrets.env."
    )
    flows_dir: Path = Field(Path("flows"), description="Folder of flow files loaded at start-up.")
    prompts_dir: Path = Field(Path("prompts"), description="Folder of prompt files.")
    inline_output_limit: int = Field(
        64 * 1024, description="Step outputs larger than this many bytes of JSON are stored as blobs."
    )
    max_concurrency: int = Field(64, description="Executions run at once by one in-process queue.")
    subflow_max_depth: int = Field(
        10, ge=1, description="How deep subflows may nest (a subflow step past it fails the execution)."
    )
    python_modules: str | None = Field(
        None,
        description="Modules `python` tasks may call, comma-separated (`shop` allows shop and shop.*; "
        "`*` allows any). Default: the project's own modules, those found under the current directory "
        "(not in a virtual environment, not the hub's own packages).",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`json`: one JSON object per log line with the execution, flow, trace and span ids "
        "(hub serve, hub worker, hub run); `text`: lines for a terminal.",
    )
    protected_labels: str = Field(
        "production",
        description="Comma-separated prompt labels that move only with a passing eval comparison or --force --reason.",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{value!r} is not a Redis URL: write redis://host:6379/0 (or rediss://, unix://)")
        return value or None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'hub.db'}"

    def protected(self) -> frozenset[str]:
        """The protected prompt labels (``HUB_PROTECTED_LABELS``; empty: none)."""
        return frozenset(p.strip() for p in self.protected_labels.split(",") if p.strip())

    def resolved_secrets_file(self) -> Path:
        return self.secrets_file or self.home / "secrets.env"
