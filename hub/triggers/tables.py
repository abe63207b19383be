"""The trigger state table: what each trigger did last, when it fires next, its last error."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel


class TriggerState(SQLModel, table=True):
    """One row per (flow, trigger). ``cursor`` is the trigger's own position (for a schedule:
    the last cron time it handled), so a restarted scheduler knows what it missed."""

    __tablename__ = "trigger_states"

    namespace: str = Field(primary_key=True)
    flow_id: str = Field(primary_key=True)
    trigger_id: str = Field(primary_key=True)
    type: str
    disabled: bool = False  # switched off through the API (``disabled:`` in the flow file also counts)
    last_fire_at: float | None = None
    next_fire_at: float | None = None
    last_execution_id: str | None = None
    fire_count: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    error_at: float | None = None
    cursor: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    updated_at: float
