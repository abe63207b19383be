"""Settings of the HTTP service (``HUB_API_*``), a section of the hub's settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Settings of the HTTP service (``HUB_API_*``)."""

    model_config = SettingsConfigDict(env_prefix="HUB_API_", extra="ignore")

    admin_key: str | None = Field(
        None, description="A bootstrap admin key accepted besides the stored keys (compose deployments)."
    )
    enrich_timeout: float = Field(30.0, gt=0, description="Seconds an enrichment call waits before answering 202.")
    enrich_batch_max: int = Field(100, ge=1, description="Most items in one enrichment batch.")
    enrich_batch_concurrency: int = Field(16, ge=1, description="Items of one batch run at once.")
    metrics_public: bool = Field(
        False, description="Serve GET /metrics without an API key (default: the `read` scope, as every GET)."
    )
    rate_limit: float = Field(0.0, ge=0, description="Enrichment requests per second per API key (0: no limit).")
    rate_burst: int = Field(0, ge=0, description="Bucket size of the rate limit (default: 2 x rate_limit).")
    redis_timeout: float = Field(
        0.5, gt=0, description="Seconds a rate-limit or cache call to Redis may take before Redis counts as down."
    )
    wait_timeout: float = Field(30.0, gt=0, description="Most seconds a webhook ?wait=true holds the request.")
    max_body: int = Field(
        10_000_000, ge=1, description="Largest request body accepted, in bytes (inputs, webhook bodies, a deploy); "
        "a larger one is answered 413."
    )
    max_flow_body: int = Field(
        1_000_000, ge=1, description="Largest flow (YAML source) accepted, in bytes; a larger one is answered 413."
    )
    flow_cache_ttl: float = Field(
        1.0, ge=0, description="Seconds a server reuses a flow's newest revision and disabled flag when starting "
        "executions; changes made through this server apply at once, through another within this time (0: always read)."
    )
