"""What the publish tasks remember so that a re-run of a step does not publish twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class BusPublish(SQLModel, table=True):
    """One message a step published and the broker acknowledged, keyed by the step's idempotency key."""

    __tablename__ = "bus_publishes"

    idempotency_key: str = Field(primary_key=True)
    execution_id: str = Field(index=True)
    bus: str
    destination: str
    ack: dict[str, Any] = Field(sa_column=Column(JSON))
    created_at: float
