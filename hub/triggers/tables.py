"""The trigger state table: what each trigger did last, when it fires next, its last error."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Integer, MetaData, String, Table, Text

METADATA = MetaData()


# One row per (flow, trigger). ``cursor`` is the trigger's own position (for a schedule:
# the last cron time it handled), so a restarted scheduler knows what it missed.
TRIGGER_STATES = Table(
    "trigger_states", METADATA,
    Column("namespace", String, primary_key=True),
    Column("flow_id", String, primary_key=True),
    Column("trigger_id", String, primary_key=True),
    Column("type", String, nullable=False),
    # switched off through the API (``disabled:`` in the flow file also counts)
    Column("disabled", Boolean, nullable=False, default=False),
    Column("last_fire_at", Float),
    Column("next_fire_at", Float),
    Column("last_execution_id", String),
    Column("fire_count", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("error_at", Float),
    Column("cursor", JSON),
    Column("updated_at", Float, nullable=False),
)
