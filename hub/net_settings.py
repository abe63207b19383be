"""Settings of outbound HTTP (``HUB_HTTP_*``), a section of the hub's settings; :mod:`hub.net`
applies them. Apart from it so that reading settings imports no HTTP client."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class NetSettings(BaseSettings):
    """``HUB_HTTP_*``: which otherwise-blocked destinations outbound HTTP may reach."""

    model_config = SettingsConfigDict(env_prefix="HUB_HTTP_", extra="ignore")

    allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated host names (wildcards like *.corp.example allowed), IP addresses or "
            "CIDR ranges that may be reached although they are private, loopback or link-local."
        ),
    )
    allow_all: bool = Field(False, description="Turn the guard off (development only).")
    max_response_bytes: int = Field(
        20 * 1024 * 1024, description="http.request refuses response bodies larger than this."
    )

    @field_validator("allow_hosts", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
