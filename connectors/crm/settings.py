"""CRM settings: the default provider (``HUB_CRM_*``) and HubSpot's (``HUB_HUBSPOT_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CrmSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_CRM_", extra="ignore")

    provider: str = Field("hubspot", description="The CRM used when a step names none.")


class HubSpotSettings(BaseSettings):
    """``HUB_HUBSPOT_*``"""

    model_config = SettingsConfigDict(env_prefix="HUB_HUBSPOT_", extra="ignore")

    token: str | None = Field(None, description="Private app access token.")
    base_url: str = Field("https://api.hubapi.com", description="API root; point it at a fake in tests.")
    timeout: float = 30.0
    max_retries: int = Field(3, description="429s waited out inside one step before failing it.")
    max_wait: float = Field(15.0, description="Longest single wait for a rate limit inside the step (seconds).")
