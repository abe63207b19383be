"""Every message ``email.send`` handled, whatever the backend: the outbox and the delivery record."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, MetaData, String, Table

METADATA = MetaData()


# One message. ``status``: ``outbox`` (stored, no backend sent it), ``sending``, ``sent`` or
# ``failed``. ``delivery`` maps each recipient to the newest provider event (``delivered``,
# ``bounce``, ...) and ``events`` keeps every event the provider reported.
EMAIL_MESSAGES = Table(
    "email_messages", METADATA,
    Column("id", String, primary_key=True),
    Column("idempotency_key", String, nullable=False, unique=True),
    Column("execution_id", String, index=True),
    Column("namespace", String),
    Column("flow_id", String),
    Column("task_path", String),
    Column("backend", String, nullable=False),
    Column("status", String, nullable=False, index=True),
    Column("from_address", String, nullable=False),
    Column("recipients", JSON),
    Column("subject", String, nullable=False),
    Column("message", JSON),
    Column("message_id", String, nullable=False),
    Column("provider_id", String, index=True),
    Column("result", JSON),
    Column("error", JSON),
    Column("delivery", JSON),
    Column("events", JSON),
    Column("attempts", Integer, nullable=False, default=1),
    Column("created_at", Float, nullable=False, index=True),
    Column("updated_at", Float, nullable=False),
    Column("sent_at", Float),
    Index("ix_email_messages_created", "created_at", "id"),
    Index("ix_email_messages_status_created", "status", "created_at", "id"),
)
