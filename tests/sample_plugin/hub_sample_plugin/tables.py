"""The plugin's table (its models); ``migrations/`` creates and changes it in a database."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class Greeting(SQLModel, table=True):
    """How often someone was greeted, and when last."""

    __tablename__ = "sample_greetings"

    name: str = Field(primary_key=True)
    count: int = 0
    last_at: float | None = None
