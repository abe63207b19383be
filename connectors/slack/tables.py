"""What ``slack.post`` remembers so that a re-run of a step does not post twice."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class SlackPost(SQLModel, table=True):
    """One message posted by a step, keyed by the step's idempotency key."""

    __tablename__ = "slack_posts"

    idempotency_key: str = Field(primary_key=True)
    execution_id: str = Field(index=True)
    channel: str
    ts: str
    created_at: float
