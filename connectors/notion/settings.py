"""Notion settings (``HUB_NOTION_*``): the integration token and where the API is."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

NOTION_VERSION = "2025-09-03"


class NotionSettings(BaseSettings):
    """``HUB_NOTION_*``: the integration token and where the API is."""

    model_config = SettingsConfigDict(env_prefix="HUB_NOTION_", extra="ignore")

    token: str | None = Field(None, description="Internal integration secret (ntn_...).")
    base_url: str = Field("https://api.notion.com", description="API root; point it at a fake in tests.")
    version: str = Field(NOTION_VERSION, description="Notion-Version header.")
    max_retries: int = Field(3, description="Retries of a rate-limited (429) request inside one step.")
    max_retry_wait: float = Field(60.0, description="Longest Retry-After waited inside the step, in seconds.")
    timeout: float = Field(60.0, description="Per-request timeout in seconds.")
