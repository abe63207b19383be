"""Slack settings (``HUB_SLACK_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_API = "https://slack.com/api/"


class SlackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_SLACK_", extra="ignore")

    bot_token: SecretStr | None = Field(
        None, description="Bot token (xoxb-...) used when a step gives no token of its own."
    )
    base_url: str = Field(SLACK_API, description="Web API base URL (a local fake in tests).")
    timeout: float = Field(30.0, description="Seconds for one Web API call.")
    rate_limit_retries: int = Field(
        2, description="How many times a rate-limited call waits for Retry-After and tries again in place."
    )
    max_retry_wait: float = Field(
        30.0,
        description="Longest Retry-After waited for in place; a longer one fails the step as retryable "
        "with retry_after, for the engine's retry policy.",
    )
