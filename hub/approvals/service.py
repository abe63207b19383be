"""Approval gates: open, decide (atomically, once), time out, cancel, and the audit log.

Every way of deciding (Slack, an email link, the web page, the API) ends in :meth:`Approvals.decide`.
It runs in one transaction that starts by writing the gate row (a compare-and-set on
``state = 'pending'``), so concurrent decisions queue behind each other on both SQLite and
PostgreSQL: double clicks, the same person on two channels and racing approvers give one outcome.
Every attempt, accepted or refused, is written to ``approval_audit``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from hub.approvals import tokens, voting
from hub.approvals.identities import People, canonical
from hub.approvals.settings import ApprovalSettings, signing_key
from hub.approvals.states import DECIDED, PENDING
from hub.approvals.tables import APPROVAL_AUDIT as AUDIT
from hub.approvals.tables import APPROVAL_GATES as GATES
from hub.approvals.tables import APPROVAL_LINKS as LINKS
from hub.approvals.tables import APPROVAL_MESSAGES as MESSAGES
from hub.approvals.tables import APPROVAL_VOTES as VOTES
from hub.approvals.voting import Ballot, Decided, Refused, iso
from hub.core import keyset
from hub.engine import pauses
from hub.engine.clock import Clock
from hub.engine.states import TERMINAL, State
from hub.errors import NotFound
from hub.store.store import STEPS, Store, new_id

if TYPE_CHECKING:
    from hub.engine.runner import Engine

log = logging.getLogger(__name__)


VOTES_ALLOWED = ("approve", "reject")
GATE_ORDER = ((GATES.c.created_at, True), (GATES.c.id, True))
__all__ = ["DECIDED", "PENDING", "Approvals", "Decided", "Refused", "iso"]


class Approvals:
    """The approval gates of one store. Build once per process (see :func:`hub.approvals.install`)."""

    def __init__(
        self,
        store: Store,
        *,
        home: Path,
        clock: Clock | None = None,
        engine: Engine | None = None,
        settings: ApprovalSettings | None = None,
        refresh: Callable[[Approvals, dict[str, Any]], Awaitable[Any]] | None = None,
    ):
        self.store = store
        self.refresh = refresh
        """Shows a gate's current state in the messages sent for it (Slack); given by the wiring."""
        self.home = home
        self.clock = clock or Clock()
        self.engine = engine
        self.settings = settings if settings is not None else ApprovalSettings()  # embedders and tests
        self.people = People(self.settings.people)
        self._key: bytes | None = None
        self.background: set[asyncio.Task[Any]] = set()

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = signing_key(self.settings, self.home)
        return self._key

    # -- reading -----------------------------------------------------------------------------------

    def get(self, gate_id: str) -> dict[str, Any]:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(GATES).where(GATES.c.id == gate_id)).first()
        if row is None:
            raise NotFound(f"approval {gate_id} not found")
        return dict(row._mapping)

    def find(self, execution_id: str, path: str) -> dict[str, Any] | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(GATES).where(GATES.c.execution_id == execution_id, GATES.c.path == path)).first()
        return dict(row._mapping) if row else None

    def gates(
        self, *, state: str | None = PENDING, limit: int = 50, offset: int = 0, after: list[Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Gates newest first (:data:`GATE_ORDER`), after a page's last ``(created_at, id)`` or past ``offset``."""
        query = select(GATES)
        if state:
            query = query.where(GATES.c.state == state)
        query = keyset.page(query, GATE_ORDER, after, limit)
        with self.store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query.offset(offset) if offset else query)]
        return [self.reconcile(r) for r in rows]

    def votes(self, gate_id: str) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(VOTES).where(VOTES.c.gate_id == gate_id).order_by(VOTES.c.id))
            return [dict(r._mapping) for r in rows]

    def messages(self, gate_id: str) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(MESSAGES).where(MESSAGES.c.gate_id == gate_id).order_by(MESSAGES.c.id))
            return [dict(r._mapping) for r in rows]

    def audit(self, gate_id: str | None = None, limit: int = 200, after: list[Any] | None = None) -> list[dict[str, Any]]:
        """Audit entries newest first, after a page's last ``[id]``."""
        query = select(AUDIT)
        if gate_id:
            query = query.where(AUDIT.c.gate_id == gate_id)
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(keyset.page(query, ((AUDIT.c.id, True),), after, limit))]

    # -- writing -----------------------------------------------------------------------------------

    def open(self, values: dict[str, Any]) -> dict[str, Any]:
        """Insert a gate; when the step's gate exists already (a re-run), return that one."""
        values = {"id": new_id(), "state": PENDING, "created_at": self.clock.time(), **values}
        try:
            with self.store.engine.begin() as conn:
                conn.execute(insert(GATES).values(**values))
                self._audit(conn, values["id"], "hub", None, "created", "info")
        except IntegrityError:
            found = self.find(values["execution_id"], values["path"])
            if found is None:
                raise
            return found
        return self.get(values["id"])

    def retire(self, gate: dict[str, Any]) -> None:
        """Move an ended gate out of its step's slot so the step (restarted) can open a new one."""
        with self.store.engine.begin() as conn:
            conn.execute(update(GATES).where(GATES.c.id == gate["id"]).values(path=f"{gate['path']}#{gate['id']}"))

    def update(self, gate_id: str, **values: Any) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(update(GATES).where(GATES.c.id == gate_id).values(**values))

    def record(
        self, gate_id: str | None, channel: str, actor: str | None, action: str, outcome: str,
        reason: str | None = None, detail: dict[str, Any] | None = None,
    ) -> None:
        with self.store.engine.begin() as conn:
            self._audit(conn, gate_id, channel, actor, action, outcome, reason, detail)

    def _audit(
        self, conn: Connection, gate_id: str | None, channel: str, actor: str | None, action: str, outcome: str,
        reason: str | None = None, detail: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(insert(AUDIT).values(
            gate_id=gate_id, at=self.clock.time(), channel=channel, actor=actor, action=action, outcome=outcome,
            reason=reason, detail=detail,
        ))

    def remember_message(self, gate_id: str, kind: str, purpose: str, target: str, **values: Any) -> bool:
        """Note a notification about to go out; False when it went out already (a re-run)."""
        try:
            with self.store.engine.begin() as conn:
                conn.execute(insert(MESSAGES).values(
                    gate_id=gate_id, kind=kind, purpose=purpose, target=target, sent_at=self.clock.time(), **values
                ))
        except IntegrityError:
            return False
        return True

    def update_message(self, message_id: int, **values: Any) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(update(MESSAGES).where(MESSAGES.c.id == message_id).values(**values))

    def close(self, gate_id: str, state: str, *, decision: str | None = None,
              decided_by: dict[str, Any] | None = None, comment: str | None = None,
              form_values: dict[str, Any] | None = None, reason: str | None = None) -> bool:
        """End a pending gate without a vote (timeout, cancel). False when it had ended already.
        The current (edited) values stay unless ``form_values`` is given."""
        with self.store.engine.begin() as conn:
            done = conn.execute(
                update(GATES).where(GATES.c.id == gate_id, GATES.c.state == PENDING).values(
                    state=state, decision=decision, decided_at=self.clock.time(), decided_by=decided_by,
                    comment=comment, version=GATES.c.version + 1,
                    **({"form_values": form_values} if form_values is not None else {}),  # edits stay
                )
            ).rowcount
            if done:
                self._audit(conn, gate_id, "hub", None, state, "info", reason)
        return bool(done)

    # -- who may decide ----------------------------------------------------------------------------

    def allowed(self, gate: dict[str, Any]) -> list[str]:
        extra = gate["escalation_approvers"] if gate["escalated_at"] is not None else []
        return [*gate["approvers"], *[a for a in extra if a not in gate["approvers"]]]

    def voter_for(self, gate: dict[str, Any], identities: list[str]) -> str | None:
        """The voter key of someone among the gate's approvers, else None."""
        mine = self.people.expand(identities)
        for approver in self.allowed(gate):
            if approver in mine or self.people.voter(approver) in mine:
                return self.people.voter(approver)
        return None

    def is_starter(self, gate: dict[str, Any], identities: list[str]) -> bool:
        starters = self.people.expand(gate["started_by"] or [])
        return bool(starters & self.people.expand(identities))

    # -- links -------------------------------------------------------------------------------------

    def link(self, gate: dict[str, Any], identity: str, channel: str) -> str:
        """A new single-use, expiring, signed link to the gate's page for one approver."""
        now = self.clock.time()
        expires = gate["link_expires_at"] or now + self.settings.link_ttl
        link_id = uuid.uuid4().hex
        with self.store.engine.begin() as conn:
            conn.execute(insert(LINKS).values(
                id=link_id, gate_id=gate["id"], identity=identity, channel=channel, created_at=now, expires_at=expires,
            ))
        token = tokens.sign(self.key, tokens.LinkClaims(gate["id"], identity, channel, expires, link_id))
        return f"{self.settings.public_url.rstrip('/')}/v1/approvals/links/{token}"

    def read_link(self, token: str, action: str = "view") -> tuple[tokens.LinkClaims, dict[str, Any], dict[str, Any]]:
        """The claims, gate and link row of a valid token; refused (and audited) otherwise.

        A used link still opens (to show who decided); :meth:`decide` refuses it."""
        try:
            claims = tokens.verify(self.key, token)
        except tokens.BadToken as exc:
            self.record(None, "link", None, action, "refused", "bad_link", {"message": str(exc)})
            raise Refused("bad_link", f"{exc}; ask for a new link") from None
        with self.store.engine.connect() as conn:
            row = conn.execute(select(LINKS).where(LINKS.c.id == claims.link_id)).first()
        if row is None or row.gate_id != claims.gate_id or row.identity != claims.identity:
            self.record(claims.gate_id, claims.channel, claims.identity, action, "refused", "bad_link")
            raise Refused("bad_link", "this link is not known here; ask for a new link")
        gate = self.reconcile(self.get(claims.gate_id))
        if claims.expires_at <= self.clock.time() and gate["state"] == PENDING:
            self.record(gate["id"], claims.channel, claims.identity, action, "refused", "expired")
            raise Refused("expired", "this link has expired; ask for a new one")
        return claims, gate, dict(row._mapping)

    # -- deciding ----------------------------------------------------------------------------------

    def decide(
        self,
        gate_id: str,
        identities: list[str],
        channel: str,
        vote: str,
        *,
        comment: str | None = None,
        form: dict[str, Any] | None = None,
        from_text: bool = False,
        link_id: str | None = None,
        revision: int | None = None,
    ) -> Decided:
        """Count one vote (see :mod:`hub.approvals.voting` for how edits and votes combine);
        raises :class:`Refused` (audited) when it cannot be counted. ``revision``: the revision of
        the values the voter was shown, when the channel knows it."""
        identities = [canonical(i) for i in identities]
        actor = identities[0] if identities else None
        ballot = Ballot(identities, channel, vote, comment, form, from_text, link_id, revision)
        try:
            if vote not in VOTES_ALLOWED:
                raise Refused("bad_request", f"decision must be approve or reject, not {vote!r}")
            if not identities:
                raise Refused("not_approver", "you are not among the approvers of this request")
            with self.store.engine.begin() as conn:
                result = voting.cast(self, conn, gate_id, ballot, self.clock.time())
        except Refused as refused:
            self.record(gate_id, channel, actor, vote, "refused", refused.reason,
                        {"message": str(refused), **({"problems": refused.details} if refused.details else {})})
            if refused.reason == "cancelled":
                self.reconcile(self.get(gate_id))
            raise
        if result.duplicate:
            return result
        return Decided(self.get(gate_id), decided=result.decided, edited=result.edited, votes=self.votes(gate_id))

    def tally(self, gate: dict[str, Any]) -> list[dict[str, Any]]:
        """The gate's votes as the channels show them (who, decision, when, edits, still counts)."""
        return voting.tally(gate, self.votes(gate["id"]))

    # -- the execution side ------------------------------------------------------------------------

    def reconcile(self, gate: dict[str, Any]) -> dict[str, Any]:
        """A pending gate whose execution ended (killed while nobody listened) is cancelled now."""
        if gate["state"] != PENDING:
            return gate
        try:
            state = self.store.get_execution(gate["execution_id"])["state"]
        except NotFound:
            state = State.KILLED
        if state in TERMINAL:
            self.close(gate["id"], "cancelled", reason=f"the execution is {state}")
            self._later(self.refresh_messages(gate["id"]))
            return self.get(gate["id"])
        return gate

    async def cancel_execution(self, execution_id: str, reason: str = "the execution was killed") -> list[str]:
        """Cancel every pending gate of an execution and update their Slack messages."""
        with self.store.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(
                select(GATES.c.id).where(GATES.c.execution_id == execution_id, GATES.c.state == PENDING)
            )]
        closed = [i for i in ids if self.close(i, "cancelled", reason=reason)]
        for gate_id in closed:
            await self.refresh_messages(gate_id)
        return closed

    async def refresh_messages(self, gate_id: str) -> None:
        """Show the gate's current state in every message sent for it (see :attr:`refresh`)."""
        if self.refresh is not None:
            await self.refresh(self, self.get(gate_id))

    async def after_decision(self, gate: dict[str, Any]) -> None:
        """Update the messages, then queue the execution's continuation."""
        try:
            await self.refresh_messages(gate["id"])
        except Exception:
            log.exception("could not update the messages of approval %s", gate["id"])
        await self.complete_step(gate)

    def resume_token(self, gate: dict[str, Any]) -> str | None:
        """The resume token of the newest run of the gate's step while it waits (RUNNING on its
        way to pausing, or PAUSED), if it holds one."""
        query = (
            select(STEPS.c.id, STEPS.c.state, STEPS.c.data)
            .where(STEPS.c.execution_id == gate["execution_id"], STEPS.c.path == gate["path"])
            .order_by(STEPS.c.id.desc()).limit(1)
        )
        with self.store.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or row.state not in (State.RUNNING, State.PAUSED):
            return None
        token = (row.data or {}).get(pauses.TOKEN_KEY)
        if token:
            return str(token)
        return self._adopt(row.id, dict(row.data or {})) if row.state == State.PAUSED else None

    def _adopt(self, step_id: int, data: dict[str, Any]) -> str | None:
        """A token for a gate step that paused holding none (an agent's tool approval paused by an
        older release), so that the decision ends it through ``engine.complete`` too. Written only
        while the step is PAUSED (an ended step is never revived); of deciders adopting at once, the
        token written last is the one ``engine.complete`` accepts, so exactly one ends the step."""
        token = pauses.new_token(step_id)
        with self.store.engine.begin() as conn:
            done = conn.execute(update(STEPS).where(STEPS.c.id == step_id, STEPS.c.state == State.PAUSED)
                                .values(data={**data, pauses.TOKEN_KEY: token}))
        return token if done.rowcount == 1 else None

    async def complete_step(self, gate: dict[str, Any]) -> bool:
        """End the gate's paused step with the decision as its output and continue the execution
        (``engine.complete``: exactly once, however many decisions and sweeps race). A gate inside
        another step (an agent's tool call, ``<step>.tools[k].approval``) is a child step run with
        a token of its own: completing it wakes the execution and the agent step reads the decision.
        Without a token (a step run outside the engine) the step reads the decision when it runs next."""
        token = self.resume_token(gate)
        if self.engine is None or token is None:
            return False
        return await self.engine.complete(token, self.outputs(self.get(gate["id"])))

    def decided_but_paused(self) -> list[str]:
        """Executions still PAUSED on a gate that was already decided (the process died between
        the decision and completing the step): the sweep completes them."""
        return sorted({gate["execution_id"] for gate in self._decided_gates_still_paused()})

    def _decided_gates_still_paused(self) -> list[dict[str, Any]]:
        query = (
            select(GATES.c.id)
            .join(STEPS, (STEPS.c.execution_id == GATES.c.execution_id) & (STEPS.c.path == GATES.c.path))
            .where(GATES.c.state.in_(sorted(DECIDED)), STEPS.c.state == State.PAUSED)
            .distinct()
        )
        with self.store.engine.connect() as conn:
            ids = [row[0] for row in conn.execute(query)]
        return [self.get(gate_id) for gate_id in ids]

    async def sweep(self) -> list[str]:
        resumed = []
        for gate in self._decided_gates_still_paused():
            if await self.complete_step(gate):
                resumed.append(gate["execution_id"])
        return resumed

    def _later(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop here (a sync caller): the messages update on the next event
            coro.close()
            return
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    # -- outputs -----------------------------------------------------------------------------------

    def outputs(self, gate: dict[str, Any]) -> dict[str, Any]:
        """The approval step's output."""
        votes = [
            {"who": v["who"], "identity": v["identity"], "channel": v["channel"], "vote": v["vote"],
             "comment": v["comment"], "at": iso(v["at"]), "revision": v["revision"], "changes": v["changes"],
             "counts": v["counts"]}
            for v in self.tally(gate)
        ]
        return {
            "gate_id": gate["id"],
            "decision": gate["decision"],
            "approved": gate["decision"] == "approved",
            "timed_out": gate["state"] == "timed_out" or (gate["decided_by"] or {}).get("channel") == "timeout",
            "decided_by": gate["decided_by"],
            "votes": votes,
            "comment": gate["comment"],
            "form": voting.current_values(gate),  # the latest edit, never the draft when someone edited
            "revision": gate["revision"],
        }

