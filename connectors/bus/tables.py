"""What the publish tasks remember so that a re-run of a step does not publish twice."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, MetaData, String, Table

METADATA = MetaData()


# One message a step published and the broker acknowledged, keyed by the step's idempotency key.
BUS_PUBLISHES = Table(
    "bus_publishes", METADATA,
    Column("idempotency_key", String, primary_key=True),
    Column("execution_id", String, nullable=False, index=True),
    Column("bus", String, nullable=False),
    Column("destination", String, nullable=False),
    Column("ack", JSON),
    Column("created_at", Float, nullable=False),
)
