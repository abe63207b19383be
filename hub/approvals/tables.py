"""Tables of approval gates: the gate, its votes, the links handed out, the messages sent, the audit log.

Times are epoch seconds (float), as in the hub's other tables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class ApprovalGate(SQLModel, table=True):
    """One pending (or decided) approval. ``(execution_id, path)`` is unique: a re-run of the step
    finds its gate instead of opening a second one."""

    __tablename__ = "approval_gates"
    __table_args__ = (
        UniqueConstraint("execution_id", "path"),
        Index("ix_approval_gates_state", "state"),
        Index("ix_approval_gates_created", "created_at", "id"),  # the lists, newest first (keyset)
        Index("ix_approval_gates_state_created", "state", "created_at", "id"),
    )

    id: str = Field(primary_key=True)
    execution_id: str = Field(index=True)
    path: str
    namespace: str
    flow_id: str
    task_id: str
    state: str  # pending | approved | rejected | timed_out | cancelled
    version: int = 0
    revision: int = 0
    """How many times the form's values were edited; votes are counted against the revision they saw."""
    title: str
    message: str = Field(sa_column=Column(Text, nullable=False))
    form: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    approvers: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    escalation_approvers: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    started_by: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    channels: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    escalation_channels: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    required: int = 1
    allow_self_approval: bool = False
    created_at: float
    deadline: float | None = None
    on_timeout: str = "reject"
    remind_every: float | None = None
    escalate_after: float | None = None
    link_expires_at: float | None = None
    reminders_sent: int = 0
    last_reminded_at: float | None = None
    escalated_at: float | None = None
    notified_at: float | None = None
    decision: str | None = None
    decided_at: float | None = None
    decided_by: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    comment: str | None = Field(default=None, sa_column=Column(Text))
    form_values: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    """The form's current values: the latest edit while pending, then the values decided (None: the defaults)."""


class ApprovalVote(SQLModel, table=True):
    """One approver's vote. ``voter`` is the person (or identity) that voted: one vote each."""

    __tablename__ = "approval_votes"
    __table_args__ = (UniqueConstraint("gate_id", "voter"),)

    id: int | None = Field(default=None, primary_key=True)
    gate_id: str = Field(index=True)
    voter: str
    identity: str
    channel: str
    vote: str  # approve | reject
    comment: str | None = Field(default=None, sa_column=Column(Text))
    form: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    at: float
    revision: int = 0
    """The revision of the gate's values this vote was made on (an approval of older values does not count)."""
    changes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    """The fields this vote edited: ``{field: {"from": old, "to": new}}``."""


class ApprovalLink(SQLModel, table=True):
    """A signed, per-approver link (email, or asked for through the API). Used once to decide."""

    __tablename__ = "approval_links"

    id: str = Field(primary_key=True)
    gate_id: str = Field(index=True)
    identity: str
    channel: str
    created_at: float
    expires_at: float
    used_at: float | None = None


class ApprovalMessage(SQLModel, table=True):
    """A notification sent for a gate: where, why (request, reminder, escalation) and, for Slack,
    the message to update once the gate is decided."""

    __tablename__ = "approval_messages"
    __table_args__ = (UniqueConstraint("gate_id", "purpose", "target"),)

    id: int | None = Field(default=None, primary_key=True)
    gate_id: str = Field(index=True)
    kind: str  # slack | email
    purpose: str  # request | reminder-<n> | escalation
    target: str
    channel_id: str | None = None
    ts: str | None = None
    email_id: str | None = None
    sent_at: float
    error: str | None = Field(default=None, sa_column=Column(Text))


class ApprovalAudit(SQLModel, table=True):
    """Every attempt to decide, accepted or refused (and why), and what happened to a gate."""

    __tablename__ = "approval_audit"
    __table_args__ = (Index("ix_approval_audit_gate_id_id", "gate_id", "id"),)  # one gate's entries, newest first

    id: int | None = Field(default=None, primary_key=True)
    gate_id: str | None = Field(default=None, index=True)
    at: float = Field(index=True)
    channel: str
    actor: str | None = None
    action: str  # approve | reject | view | created | notified | reminded | escalated | timed_out | cancelled
    outcome: str  # accepted | refused | info
    reason: str | None = None
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
