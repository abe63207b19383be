"""Tables of approval gates: the gate, its votes, the links handed out, the messages sent, the audit log.

Times are epoch seconds (float), as in the hub's other tables.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

METADATA = MetaData()


# One pending (or decided) approval. ``(execution_id, path)`` is unique: a re-run of the step
# finds its gate instead of opening a second one.
APPROVAL_GATES = Table(
    "approval_gates", METADATA,
    Column("id", String, primary_key=True),
    Column("execution_id", String, nullable=False, index=True),
    Column("path", String, nullable=False),
    Column("namespace", String, nullable=False),
    Column("flow_id", String, nullable=False),
    Column("task_id", String, nullable=False),
    Column("state", String, nullable=False),  # pending | approved | rejected | timed_out | cancelled
    Column("version", Integer, nullable=False, default=0),
    # How many times the form's values were edited; votes are counted against the revision they saw.
    Column("revision", Integer, nullable=False, default=0),
    Column("title", String, nullable=False),
    Column("message", Text, nullable=False),
    Column("form", JSON),
    Column("approvers", JSON),
    Column("escalation_approvers", JSON),
    Column("started_by", JSON),
    Column("channels", JSON),
    Column("escalation_channels", JSON),
    Column("required", Integer, nullable=False, default=1),
    Column("allow_self_approval", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("deadline", Float),
    Column("on_timeout", String, nullable=False, default="reject"),
    Column("remind_every", Float),
    Column("escalate_after", Float),
    Column("link_expires_at", Float),
    Column("reminders_sent", Integer, nullable=False, default=0),
    Column("last_reminded_at", Float),
    Column("escalated_at", Float),
    Column("notified_at", Float),
    Column("decision", String),
    Column("decided_at", Float),
    Column("decided_by", JSON),
    Column("comment", Text),
    # The form's current values: the latest edit while pending, then the values decided (None: the defaults).
    Column("form_values", JSON),
    UniqueConstraint("execution_id", "path"),
    Index("ix_approval_gates_state", "state"),
    Index("ix_approval_gates_created", "created_at", "id"),  # the lists, newest first (keyset)
    Index("ix_approval_gates_state_created", "state", "created_at", "id"),
)


# One approver's vote. ``voter`` is the person (or identity) that voted: one vote each.
APPROVAL_VOTES = Table(
    "approval_votes", METADATA,
    Column("id", Integer, primary_key=True),
    Column("gate_id", String, nullable=False, index=True),
    Column("voter", String, nullable=False),
    Column("identity", String, nullable=False),
    Column("channel", String, nullable=False),
    Column("vote", String, nullable=False),  # approve | reject
    Column("comment", Text),
    Column("form", JSON),
    Column("at", Float, nullable=False),
    # The revision of the gate's values this vote was made on (an approval of older values does not count).
    Column("revision", Integer, nullable=False, default=0),
    Column("changes", JSON),  # The fields this vote edited: ``{field: {"from": old, "to": new}}``.
    UniqueConstraint("gate_id", "voter"),
)


# A signed, per-approver link (email, or asked for through the API). Used once to decide.
APPROVAL_LINKS = Table(
    "approval_links", METADATA,
    Column("id", String, primary_key=True),
    Column("gate_id", String, nullable=False, index=True),
    Column("identity", String, nullable=False),
    Column("channel", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
)


# A notification sent for a gate: where, why (request, reminder, escalation) and, for Slack,
# the message to update once the gate is decided.
APPROVAL_MESSAGES = Table(
    "approval_messages", METADATA,
    Column("id", Integer, primary_key=True),
    Column("gate_id", String, nullable=False, index=True),
    Column("kind", String, nullable=False),  # slack | email
    Column("purpose", String, nullable=False),  # request | reminder-<n> | escalation
    Column("target", String, nullable=False),
    Column("channel_id", String),
    Column("ts", String),
    Column("email_id", String),
    Column("sent_at", Float, nullable=False),
    Column("error", Text),
    UniqueConstraint("gate_id", "purpose", "target"),
)


# Every attempt to decide, accepted or refused (and why), and what happened to a gate.
APPROVAL_AUDIT = Table(
    "approval_audit", METADATA,
    Column("id", Integer, primary_key=True),
    Column("gate_id", String, index=True),
    Column("at", Float, nullable=False, index=True),
    Column("channel", String, nullable=False),
    Column("actor", String),
    # approve | reject | view | created | notified | reminded | escalated | timed_out | cancelled
    Column("action", String, nullable=False),
    Column("outcome", String, nullable=False),  # accepted | refused | info
    Column("reason", String),
    Column("detail", JSON),
    Index("ix_approval_audit_gate_id_id", "gate_id", "id"),  # one gate's entries, newest first
)
