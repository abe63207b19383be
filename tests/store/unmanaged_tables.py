"""A table of a plugin that declares no migrations (tests/store/test_schema_histories.py)."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class UnmanagedNote(SQLModel, table=True):
    __tablename__ = "unmanaged_notes"

    id: int | None = Field(default=None, primary_key=True)
    text: str
