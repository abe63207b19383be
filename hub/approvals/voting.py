"""Counting one vote on a gate whose form values approvers may edit.

The rule (docs/approvals.md, "Edits and quorum"):

- **The latest edit stands.** An approval whose form values differ from the gate's current values
  makes them the current values (the gate's ``revision`` goes up by one). Later approvers see and
  approve those values, and they are the step's output.
- **An approval counts for the values it was made on.** Each vote keeps the revision it saw; only
  approvals of the current revision count towards ``required``. After an edit, an earlier approval
  of older values no longer counts: its approver is shown that the values changed and may approve
  again (a used email link opens once more for that).
- **A decision made on an old view is refused.** A page, message or API call that names the
  revision it showed (``revision``) and is behind the gate is refused (``values_changed``) and the
  new values are shown: nobody approves values they have not seen.
- One rejection rejects, whatever the revision.

Everything happens in the caller's transaction, after the gate row was written (locked).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Row, insert, select, update

from hub.approvals import forms
from hub.approvals.identities import display
from hub.approvals.states import DECIDED, PENDING
from hub.approvals.tables import APPROVAL_GATES as GATES
from hub.approvals.tables import APPROVAL_LINKS as LINKS
from hub.approvals.tables import APPROVAL_VOTES as VOTES
from hub.engine.states import TERMINAL
from hub.errors import HubError, NotFound
from hub.store.store import EXECUTIONS


class Gates(Protocol):
    """What counting needs of :class:`hub.approvals.service.Approvals`."""

    def voter_for(self, gate: dict[str, Any], identities: list[str]) -> str | None: ...

    def is_starter(self, gate: dict[str, Any], identities: list[str]) -> bool: ...

    def _audit(
        self, conn: Connection, gate_id: str | None, channel: str, actor: str | None, action: str, outcome: str,
        reason: str | None = None, detail: dict[str, Any] | None = None,
    ) -> None: ...


class Refused(HubError):
    """A decision attempt that is not accepted. ``reason`` is a short code kept in the audit log."""

    STATUS = {
        "not_approver": 403, "self_approval": 403, "bad_signature": 401, "bad_link": 403, "already_decided": 409,
        "already_voted": 409, "link_used": 409, "cancelled": 409, "expired": 410, "invalid_form": 422,
        "bad_request": 400, "values_changed": 409,
    }

    def __init__(self, reason: str, message: str, details: dict[str, str] | None = None):
        super().__init__(message)
        self.reason = reason
        self.status = self.STATUS.get(reason, 400)
        self.details = details or {}


@dataclass
class Decided:
    """The gate after an accepted vote. ``decided``: this vote closed it; ``duplicate``: the same
    vote was already counted (a double click), nothing changed; ``edited``: this vote changed the
    values (earlier approvals no longer count)."""

    gate: dict[str, Any]
    decided: bool = False
    duplicate: bool = False
    edited: bool = False
    votes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Ballot:
    """One vote as it arrives from a channel."""

    identities: list[str]
    channel: str
    vote: str
    comment: str | None = None
    form: dict[str, Any] | None = None
    from_text: bool = False
    link_id: str | None = None
    revision: int | None = None
    """The revision of the values the voter was shown (None: whatever is current)."""


# -- reading -----------------------------------------------------------------------------------------


def current_values(gate: dict[str, Any]) -> dict[str, Any]:
    """The form's values now: the latest edit, else the defaults (the draft)."""
    if gate.get("form_values") is not None:
        return dict(gate["form_values"])
    return forms.defaults(gate.get("form") or {})


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    """The fields whose value changed, ``{field: {"from": old, "to": new}}``; None when none did."""
    changed = {k: {"from": before.get(k), "to": v} for k, v in after.items() if before.get(k) != v}
    return changed or None


def counts(gate: dict[str, Any], vote: dict[str, Any]) -> bool:
    """Whether a vote counts now: a rejection always, an approval only for the current values."""
    return vote["vote"] == "reject" or int(vote.get("revision") or 0) == int(gate.get("revision") or 0)


def approvals(gate: dict[str, Any], votes: list[dict[str, Any]]) -> int:
    """Approvals that count towards ``required``."""
    return sum(1 for v in votes if v["vote"] == "approve" and counts(gate, v))


def tally(gate: dict[str, Any], votes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The votes as every channel shows them: who, decision, when, what they edited, and whether
    the vote still counts (``stale``: an approval of values edited since)."""
    return [
        {"who": display(v["voter"]), "voter": v["voter"], "identity": v["identity"], "channel": v["channel"],
         "vote": v["vote"], "comment": v["comment"], "at": v["at"], "revision": int(v.get("revision") or 0),
         "changes": v.get("changes"), "counts": counts(gate, v), "stale": not counts(gate, v)}
        for v in votes
    ]


# -- counting ----------------------------------------------------------------------------------------


def cast(service: Gates, conn: Connection, gate_id: str, ballot: Ballot, now: float) -> Decided:
    """Count ``ballot`` on the gate inside ``conn``'s transaction; raises :class:`Refused`."""
    # the write comes first: it takes the row (PostgreSQL) or the database (SQLite) lock
    open_ = conn.execute(
        update(GATES).where(GATES.c.id == gate_id, GATES.c.state == PENDING).values(version=GATES.c.version + 1)
    ).rowcount
    row = conn.execute(select(GATES).where(GATES.c.id == gate_id)).first()
    if row is None:
        raise NotFound(f"approval {gate_id} not found")
    gate = dict(row._mapping)
    voter = service.voter_for(gate, ballot.identities)
    prior = conn.execute(select(VOTES).where(VOTES.c.gate_id == gate_id, VOTES.c.voter == voter)).first() \
        if voter else None
    if prior is not None and (open_ or gate["state"] in DECIDED) and _repeats(gate, prior, ballot):
        return Decided(gate, duplicate=True)
    if not open_:
        raise Refused("already_decided" if gate["state"] in DECIDED else "cancelled", ended(gate))
    _check(service, conn, gate, voter, prior, ballot, now)
    values, edited = None, None
    if ballot.vote == "approve":
        values = _validated(gate, ballot)
        edited = diff(current_values(gate), values)
        if edited:
            gate["revision"] = int(gate["revision"] or 0) + 1
            conn.execute(update(GATES).where(GATES.c.id == gate_id).values(
                revision=gate["revision"], form_values=values))
    _write_vote(conn, gate, voter, prior, ballot, values, edited, now)
    votes = [dict(r._mapping) for r in conn.execute(select(VOTES).where(VOTES.c.gate_id == gate_id))]
    decision = "rejected" if ballot.vote == "reject" else (
        "approved" if approvals(gate, votes) >= gate["required"] else None)
    service._audit(conn, gate_id, ballot.channel, ballot.identities[0], ballot.vote, "accepted", None,
                   {"voter": voter, "decided": decision, "revision": gate["revision"],
                    **({"changes": edited} if edited else {})})
    if decision is not None:
        conn.execute(update(GATES).where(GATES.c.id == gate_id).values(
            state=decision, decision=decision, decided_at=now, comment=ballot.comment or None,
            decided_by={"who": display(str(voter)), "identity": ballot.identities[0], "channel": ballot.channel,
                        "at": iso(now)},
        ))
    return Decided(gate, decided=decision is not None, edited=bool(edited))


def _repeats(gate: dict[str, Any], prior: Row[Any], ballot: Ballot) -> bool:
    """The same vote on the same values again (a double click): nothing to count."""
    if prior.vote != ballot.vote or int(prior.revision or 0) != int(gate["revision"] or 0):
        return False
    if ballot.vote == "reject" or ballot.form is None:
        return True
    try:
        return forms.validate(gate["form"] or {}, ballot.form, from_text=ballot.from_text,
                              base=current_values(gate)) == current_values(gate)
    except forms.FormInvalid:
        return False


def _check(
    service: Gates, conn: Connection, gate: dict[str, Any], voter: str | None, prior: Row[Any] | None,
    ballot: Ballot, now: float,
) -> None:
    execution = conn.execute(select(EXECUTIONS.c.state).where(EXECUTIONS.c.id == gate["execution_id"])).first()
    if execution is None or execution.state in TERMINAL:
        raise Refused("cancelled", "the execution waiting for this approval has ended")
    if gate["deadline"] is not None and now >= gate["deadline"]:
        raise Refused("expired", "the time to decide has run out")
    if voter is None:
        raise Refused("not_approver", "you are not among the approvers of this request")
    if not gate["allow_self_approval"] and service.is_starter(gate, ballot.identities):
        raise Refused("self_approval", "whoever started the execution cannot approve it")
    stale = prior is not None and prior.vote == "approve" and int(prior.revision or 0) < int(gate["revision"] or 0)
    if prior is not None and not stale:
        raise Refused("already_voted", f"you already voted {prior.vote} on this request")
    if ballot.revision is not None and ballot.revision != int(gate["revision"] or 0):
        raise Refused("values_changed", changed_since(gate, conn))
    if ballot.link_id is not None:
        query = update(LINKS).where(LINKS.c.id == ballot.link_id)
        if not stale:  # a link whose approval went stale decides once more, on the new values
            query = query.where(LINKS.c.used_at.is_(None))
        if not conn.execute(query.values(used_at=now)).rowcount:
            raise Refused("link_used", "this link was used already; each link decides once")


def changed_since(gate: dict[str, Any], conn: Connection) -> str:
    """Why a decision on an old view is refused: who changed what."""
    last = conn.execute(
        select(VOTES.c.voter, VOTES.c.changes)
        .where(VOTES.c.gate_id == gate["id"], VOTES.c.revision == gate["revision"], VOTES.c.changes.is_not(None))
    ).first()
    by = f" by {display(last.voter)}" if last is not None else ""
    fields = ", ".join(sorted(last.changes)) if last is not None and last.changes else "the form"
    return (f"the values were edited{by} ({fields}) since you were shown them; "
            "review the current values and decide again")


def _validated(gate: dict[str, Any], ballot: Ballot) -> dict[str, Any]:
    try:
        return forms.validate(gate["form"] or {}, ballot.form, from_text=ballot.from_text, base=current_values(gate))
    except forms.FormInvalid as exc:
        raise Refused("invalid_form", f"the form has errors: {exc}", exc.problems) from None


def _write_vote(
    conn: Connection, gate: dict[str, Any], voter: str | None, prior: Row[Any] | None, ballot: Ballot,
    values: dict[str, Any] | None, edited: dict[str, Any] | None, now: float,
) -> None:
    row = {"identity": ballot.identities[0], "channel": ballot.channel, "vote": ballot.vote,
           "comment": ballot.comment or None, "form": values, "at": now, "revision": gate["revision"],
           "changes": edited}
    if prior is None:
        conn.execute(insert(VOTES).values(gate_id=gate["id"], voter=voter, **row))
    else:  # approving again after the values changed (the earlier vote stays in the audit log)
        conn.execute(update(VOTES).where(VOTES.c.id == prior.id).values(**row))


def ended(gate: dict[str, Any]) -> str:
    if gate["state"] == "cancelled":
        return "this request was cancelled (its execution ended)"
    who = (gate["decided_by"] or {}).get("who")
    return f"this request was already {gate['state'].replace('_', ' ')}" + (f" by {who}" if who else "")


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts is not None else None
