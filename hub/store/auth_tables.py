"""Tables of the API service: API keys (hashed) and webhook idempotency records."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Integer, MetaData, String, Table, UniqueConstraint

METADATA = MetaData()


# An API key. Only the SHA-256 of the secret is stored; ``id`` is the public prefix.
API_KEYS = Table(
    "api_keys", METADATA,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("key_hash", String, nullable=False),
    Column("scopes", JSON),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
    Column("revoked_at", Float),
)


# First execution started for an ``Idempotency-Key`` on one webhook trigger (kept 24 h).
IDEMPOTENCY_KEYS = Table(
    "idempotency_keys", METADATA,
    Column("id", Integer, primary_key=True),
    Column("scope", String, nullable=False),
    Column("key", String, nullable=False),
    Column("body_hash", String, nullable=False),
    Column("execution_id", String, nullable=False),
    Column("created_at", Float, nullable=False, index=True),
    Column("response", JSON),
    UniqueConstraint("scope", "key"),
)
