"""Tables of the prompt registry. Versions are immutable; labels point at versions and every
move of a label is kept (``prompt_label_moves``), so "what did production mean at time t" has
an answer."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Integer, MetaData, String, Table, Text, UniqueConstraint

METADATA = MetaData()


PROMPT_VERSIONS = Table(
    "prompt_versions", METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("content_hash", String, nullable=False),
    Column("spec", JSON),
    Column("source", Text, nullable=False),
    Column("message", String),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("name", "version"),
)


PROMPT_LABELS = Table(
    "prompt_labels", METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False, index=True),
    Column("label", String, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("name", "label"),
)


PROMPT_LABEL_MOVES = Table(
    "prompt_label_moves", METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False, index=True),
    Column("label", String, nullable=False),
    Column("version", Integer, nullable=False),
    Column("previous", Integer),
    Column("moved_at", Float, nullable=False),
    Column("actor", String),
    Column("reason", Text),
    Column("eval_run", String),
    Column("forced", Boolean, nullable=False, default=False),
)


# The version a step of an execution resolved, so that its re-runs use the same one.
PROMPT_PINS = Table(
    "prompt_pins", METADATA,
    Column("id", Integer, primary_key=True),
    Column("execution_id", String, nullable=False, index=True),
    Column("path", String, nullable=False),
    Column("reference", String, nullable=False),
    Column("name", String, nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("execution_id", "path"),
)
