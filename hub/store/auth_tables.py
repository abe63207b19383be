"""Tables of the API service: API keys (hashed) and webhook idempotency records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


class ApiKey(SQLModel, table=True):
    """An API key. Only the SHA-256 of the secret is stored; ``id`` is the public prefix."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True)
    name: str
    key_hash: str
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None


class IdempotencyRecord(SQLModel, table=True):
    """First execution started for an ``Idempotency-Key`` on one webhook trigger (kept 24 h)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str
    key: str
    body_hash: str
    execution_id: str
    created_at: float = Field(index=True)
    response: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
