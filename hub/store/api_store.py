"""Store operations the API needs beyond the engine's: flow revisions, disable/delete, API keys and
webhook idempotency records. Same SQLAlchemy Core on SQLite and PostgreSQL as :mod:`hub.store.store`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from sqlalchemy import Connection, case, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.core import keyset
from hub.errors import NotFound
from hub.store.auth_tables import API_KEYS as KEYS
from hub.store.auth_tables import IDEMPOTENCY_KEYS as IDEMPOTENCY
from hub.store.store import FLOWS, AlongWrite, Conflict, Store

SCOPES = ("admin", "run", "approve", "read")
NAMESPACED = ("run", "read")
"""Scopes that may be narrowed to a namespace (and those under it): ``run:sales``, ``read:sales.emea``."""
SCOPE_PATTERN = r"^(admin|run|approve|read)$|^(run|read):[A-Za-z0-9_][A-Za-z0-9_.-]*$"


def valid_scope(scope: str) -> bool:
    import re

    return re.match(SCOPE_PATTERN, scope) is not None
KEY_PREFIX = "hub_"
IDEMPOTENCY_TTL = 24 * 3600.0
IDEMPOTENCY_PURGE_EVERY = 3600.0  # seconds between deletes of all expired keys (per server)
KEY_USE_RESOLUTION = 60.0  # last_used_at of an API key is kept to this many seconds


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(token: str) -> tuple[str, str] | None:
    """``hub_<id>_<secret>`` -> (id, whole token); None when the token is not shaped like a key."""
    if not token.startswith(KEY_PREFIX):
        return None
    rest = token[len(KEY_PREFIX):]
    key_id, sep, secret = rest.partition("_")
    if not sep or not key_id or not secret:
        return None
    return key_id, token


class ApiStore:
    """The API's repository, on the engine's :class:`Store` (same database, same connection pool)."""

    def __init__(self, store: Store, head_ttl: float = 0.0):
        self.store = store
        self.engine = store.engine
        self.auto = store.auto  # single-statement reads and writes: no BEGIN/ROLLBACK round trips
        # flow heads read on every start (webhooks, enrichment, API), kept ``head_ttl`` seconds;
        # a change made here clears them at once, one made by another process shows within the TTL
        self.head_ttl = head_ttl
        self._heads: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._idempotency_purged = 0.0

    # -- flows -------------------------------------------------------------------------------------

    def flow_state(self, namespace: str, flow_id: str) -> dict[str, Any]:
        """The newest revision row of a flow (``disabled``/``deleted`` flags included)."""
        return self.store.newest_flow_row(namespace, flow_id)

    def flow_head(self, namespace: str, flow_id: str) -> dict[str, Any]:
        """Revision number and flags of a flow's newest revision (see :meth:`Store.flow_head`),
        at most ``head_ttl`` seconds old."""
        if self.head_ttl <= 0:
            return self.store.flow_head(namespace, flow_id)
        now = time.monotonic()
        hit = self._heads.get((namespace, flow_id))
        if hit is not None and hit[0] > now:
            return hit[1]
        head = self.store.flow_head(namespace, flow_id)
        if len(self._heads) > 10_000:
            self._heads.clear()
        self._heads[(namespace, flow_id)] = (now + self.head_ttl, head)
        return head

    def forget_flows(self) -> None:
        """Drop the cached flow heads (a flow was saved, disabled, enabled or deleted here)."""
        self._heads.clear()

    def revisions(
        self, namespace: str, flow_id: str, limit: int | None = None, after: list[Any] | None = None
    ) -> list[dict[str, Any]]:
        """A flow's revisions, oldest first; a page of ``limit`` after the revision ``after[0]``."""
        query = (
            select(FLOWS.c.revision, FLOWS.c.content_hash, FLOWS.c.created_at, FLOWS.c.disabled, FLOWS.c.deleted)
            .where(FLOWS.c.namespace == namespace, FLOWS.c.flow_id == flow_id)
        )
        with self.auto.connect() as conn:
            rows = conn.execute(keyset.page(query, ((FLOWS.c.revision, False),), after, limit)).all()
        return [dict(r._mapping) for r in rows]

    def set_disabled(self, namespace: str, flow_id: str, disabled: bool) -> None:
        self._flag_revisions(namespace, flow_id, disabled=disabled)

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        """Mark every revision deleted; executions keep reading the revision they ran."""
        self._flag_revisions(namespace, flow_id, deleted=True)

    def _flag_revisions(self, namespace: str, flow_id: str, **flags: bool) -> None:
        """Set ``flags`` on every revision of a flow that exists (NotFound otherwise)."""
        self.store.flow_head(namespace, flow_id)
        with self.engine.begin() as conn:
            conn.execute(
                update(FLOWS).where(FLOWS.c.namespace == namespace, FLOWS.c.flow_id == flow_id).values(**flags)
            )
        self.forget_flows()  # after the write: a head read meanwhile must not be kept

    # -- API keys ----------------------------------------------------------------------------------

    def create_key(self, name: str, scopes: list[str]) -> tuple[dict[str, Any], str]:
        """A new key; returns its row and the secret token, shown once and never stored."""
        unknown = [s for s in scopes if not valid_scope(s)]
        if unknown or not scopes:
            raise ValueError(f"scopes must be some of {', '.join(SCOPES)}, or run:<namespace> or read:<namespace>; "
                             f"got {', '.join(scopes) or 'none'}")
        key_id = secrets.token_hex(4)
        token = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
        row = {
            "id": key_id,
            "name": name,
            "key_hash": hash_secret(token),
            "scopes": sorted(set(scopes)),
            "created_at": time.time(),
        }
        with self.engine.begin() as conn:
            conn.execute(insert(KEYS).values(**row))
        return self.get_key(key_id), token

    def get_key(self, key_id: str) -> dict[str, Any]:
        with self.auto.connect() as conn:
            row = conn.execute(select(KEYS).where(KEYS.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        return _public(dict(row._mapping))

    def list_keys(self) -> list[dict[str, Any]]:
        with self.auto.connect() as conn:
            rows = conn.execute(select(KEYS).order_by(KEYS.c.created_at)).all()
        return [_public(dict(r._mapping)) for r in rows]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        self.get_key(key_id)
        with self.engine.begin() as conn:
            conn.execute(
                update(KEYS).where(KEYS.c.id == key_id, KEYS.c.revoked_at.is_(None)).values(revoked_at=time.time())
            )
        return self.get_key(key_id)

    def any_keys(self) -> bool:
        """Whether a key was ever created (a revoked key still means "auth is on")."""
        with self.auto.connect() as conn:
            return conn.execute(select(KEYS.c.id).limit(1)).first() is not None

    def verify_key(self, token: str) -> dict[str, Any] | None:
        """The active key that ``token`` is, or None. Hashes are compared in constant time."""
        parts = split_key(token)
        if parts is None:
            return None
        key_id, whole = parts
        with self.auto.connect() as conn:
            row = conn.execute(select(KEYS).where(KEYS.c.id == key_id)).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.key_hash, hash_secret(whole)):
            return None
        found = dict(row._mapping)
        now = time.time()
        if found["last_used_at"] is None or now - found["last_used_at"] > KEY_USE_RESOLUTION:
            with self.auto.connect() as conn:  # at most one write per key per minute
                conn.execute(update(KEYS).where(KEYS.c.id == key_id).values(last_used_at=now))
            found["last_used_at"] = now
        return _public(found)

    # -- idempotency -------------------------------------------------------------------------------

    def claim_idempotency(
        self, scope: str, key: str, body_hash: str, execution_id: str, conn: Connection | None = None
    ) -> dict[str, Any] | None:
        """Record ``key`` for ``execution_id``; returns the earlier record when the key was seen
        within 24 h (then nothing is recorded). Unique in the database, so it holds across servers.
        With ``conn``, the claim is part of that connection's transaction (see :meth:`claim_along`).

        One statement, on SQLite and PostgreSQL alike: an insert that, when the key is already
        there, keeps the earlier record unless it expired (then it takes this claim's values, as
        if the key were absent), and returns the row as it stands. ``execution_id`` is fresh for
        every claim, so the row is this claim's exactly when it carries this id and time."""
        now = time.time()
        if conn is None:
            self._purge_now_and_then(now)
        insert_ = sqlite_insert if self.store.is_sqlite else pg_insert
        row_values = insert_(IDEMPOTENCY).values(
            scope=scope, key=key, body_hash=body_hash, execution_id=execution_id, created_at=now
        )
        expired = IDEMPOTENCY.c.created_at < now - IDEMPOTENCY_TTL
        taken = ("body_hash", "execution_id", "created_at", "response")  # excluded.response: NULL
        claim = row_values.on_conflict_do_update(
            index_elements=[IDEMPOTENCY.c.scope, IDEMPOTENCY.c.key],
            set_={name: case((expired, row_values.excluded[name]), else_=IDEMPOTENCY.c[name]) for name in taken},
        ).returning(*IDEMPOTENCY.c)
        if conn is not None:
            row = conn.execute(claim).one()
        else:
            with self.auto.begin() as own:
                row = own.execute(claim).one()
        if row.execution_id == execution_id and row.created_at == now:
            return None
        return dict(row._mapping)

    def claim_along(self, scope: str, key: str, body_hash: str, execution_id: str) -> AlongWrite:
        """The claim of ``key`` as a write done in the transaction that creates ``execution_id``
        (``Engine.start(along=...)``): the key is taken exactly when the execution exists, so a
        start that fails, or a process that dies before the commit, leaves the key free for the
        sender's retry. When the key is already taken it raises :class:`KeyTaken` (the execution is
        not created)."""
        self._purge_now_and_then(time.time())  # outside the transaction: it holds no lock meanwhile

        def claim(conn: Connection) -> None:
            earlier = self.claim_idempotency(scope, key, body_hash, execution_id, conn)
            if earlier is not None:
                raise KeyTaken(earlier)

        return claim

    def _purge_now_and_then(self, now: float) -> None:
        if now - self._idempotency_purged > IDEMPOTENCY_PURGE_EVERY:  # expired keys do not pile up
            self._idempotency_purged = now
            self.purge_idempotency(now)

    def purge_idempotency(self, now: float | None = None) -> int:
        """Delete every key older than 24 h; returns how many."""
        cutoff = (now or time.time()) - IDEMPOTENCY_TTL
        with self.engine.begin() as conn:
            result = conn.execute(delete(IDEMPOTENCY).where(IDEMPOTENCY.c.created_at < cutoff))
        return int(result.rowcount or 0)


class KeyTaken(Conflict):
    """The idempotency key was claimed within 24 h by the execution in ``earlier``."""

    def __init__(self, earlier: dict[str, Any]):
        super().__init__(f"idempotency key already used by execution {earlier['execution_id']}")
        self.earlier = earlier


def _public(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("key_hash", None)
    return row
