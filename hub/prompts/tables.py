"""Tables of the prompt registry. Versions are immutable; labels point at versions and every
move of a label is kept (``prompt_label_moves``), so "what did production mean at time t" has
an answer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class PromptVersion(SQLModel, table=True):
    __tablename__ = "prompt_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: int
    content_hash: str
    spec: Any = Field(sa_column=Column(JSON))
    source: str = Field(sa_column=Column(Text, nullable=False))
    message: str | None = None
    created_at: float


class PromptLabel(SQLModel, table=True):
    __tablename__ = "prompt_labels"
    __table_args__ = (UniqueConstraint("name", "label"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    label: str
    version: int
    updated_at: float


class PromptLabelMove(SQLModel, table=True):
    __tablename__ = "prompt_label_moves"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    label: str
    version: int
    previous: int | None = None
    moved_at: float
    actor: str | None = Field(default=None, description="Who moved it: 'key:<name>' (API) or 'user:<login>' (CLI).")
    reason: str | None = Field(default=None, sa_column=Column(Text))
    eval_run: str | None = Field(default=None, description="The eval run that justified the move.")
    forced: bool = Field(default=False, description="A protected label moved with --force (audited).")


class PromptPin(SQLModel, table=True):
    """The version a step of an execution resolved, so that its re-runs use the same one."""

    __tablename__ = "prompt_pins"
    __table_args__ = (UniqueConstraint("execution_id", "path"),)

    id: int | None = Field(default=None, primary_key=True)
    execution_id: str = Field(index=True)
    path: str
    reference: str
    name: str
    version: int
    content_hash: str
    created_at: float
