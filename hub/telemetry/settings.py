"""Settings of the hub's own tracing (``HUB_TRACING``, ``HUB_TRACE_*``), a section of the hub's
settings, checked at start-up. The ``OTEL_*`` variables are the OpenTelemetry SDK's and read by it."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ON = ("on", "true", "1", "yes")
OFF = ("off", "false", "0", "no")
PURE_STEP_MODES = ("events", "spans", "off", *ON, *OFF, "none")


def _choice(value: Any, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if text and text not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(dict.fromkeys(allowed))}")
    return text or None


class TelemetrySettings(BaseSettings):
    """Whether the hub traces, and what its database keeps."""

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    tracing: str | None = Field(
        None, description="off: no tracing at all; on: the CLI traces too (servers and workers trace by default)."
    )
    trace_store: str | None = Field(None, description="off: spans are not kept in the hub database.")
    trace_retention_days: float = Field(7.0, ge=0, description="Days the hub database keeps spans.")
    trace_pure_steps: str | None = Field(
        None, description="How set/log/fail steps are traced: events (default), spans or off."
    )

    @field_validator("tracing", "trace_store", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> str | None:
        return _choice(value, (*ON, *OFF))

    @field_validator("trace_pure_steps", mode="before")
    @classmethod
    def _pure_steps(cls, value: Any) -> str | None:
        return _choice(value, PURE_STEP_MODES)
