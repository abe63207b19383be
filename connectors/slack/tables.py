"""What ``slack.post`` remembers so that a re-run of a step does not post twice."""

from __future__ import annotations

from sqlalchemy import Column, Float, MetaData, String, Table

METADATA = MetaData()


# One message posted by a step, keyed by the step's idempotency key.
SLACK_POSTS = Table(
    "slack_posts", METADATA,
    Column("idempotency_key", String, primary_key=True),
    Column("execution_id", String, nullable=False, index=True),
    Column("channel", String, nullable=False),
    Column("ts", String, nullable=False),
    Column("created_at", Float, nullable=False),
)
