"""A plugin's SQLModel tables that reference the hub's tables, one of them imported from another
module (tests/store/test_schema_histories.py)."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

from tests.store.unmanaged_tables import UnmanagedNote  # noqa: F401  (imported, still this plugin's)


class ExecutionNote(SQLModel, table=True):
    __tablename__ = "execution_notes"

    id: int | None = Field(default=None, primary_key=True)
    execution_id: str = Field(foreign_key="executions.id", index=True)
    text: str
