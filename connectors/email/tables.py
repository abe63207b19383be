"""Every message ``email.send`` handled, whatever the backend: the outbox and the delivery record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel


class EmailMessage(SQLModel, table=True):
    """One message. ``status``: ``outbox`` (stored, no backend sent it), ``sending``, ``sent`` or
    ``failed``. ``delivery`` maps each recipient to the newest provider event (``delivered``,
    ``bounce``, ...) and ``events`` keeps every event the provider reported."""

    __tablename__ = "email_messages"
    __table_args__ = (  # the lists, newest first (keyset paging)
        Index("ix_email_messages_created", "created_at", "id"),
        Index("ix_email_messages_status_created", "status", "created_at", "id"),
    )

    id: str = Field(primary_key=True)
    idempotency_key: str = Field(unique=True)
    execution_id: str | None = Field(default=None, index=True)
    namespace: str | None = None
    flow_id: str | None = None
    task_path: str | None = None
    backend: str
    status: str = Field(index=True)
    from_address: str
    recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    subject: str
    message: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    message_id: str
    provider_id: str | None = Field(default=None, index=True)
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    delivery: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    events: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    attempts: int = 1
    created_at: float = Field(index=True)
    updated_at: float
    sent_at: float | None = None
