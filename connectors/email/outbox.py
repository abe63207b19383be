"""The email record: the outbox (messages no backend sent) and what happened to every message.

``email.send`` claims a record keyed by the step's idempotency key before it sends, so a re-run of
a step that already sent returns the first result instead of sending again. The API and the CLI
read messages with :func:`list_messages` and :func:`get_message`; the SendGrid event webhook
feeds :func:`record_events`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from connectors.email.message import Message
from connectors.email.tables import EMAIL_MESSAGES as MESSAGES
from hub.core import keyset
from hub.core.errors import NotFound
from hub.core.tasks import TaskStore

SUMMARY_COLUMNS = [
    c for c in MESSAGES.c if c.name not in ("message", "events", "result")
]
DONE = ("sent", "outbox")


def claim(
    store: TaskStore,
    *,
    idempotency_key: str,
    message: Message,
    backend: str,
    execution_id: str | None = None,
    namespace: str | None = None,
    flow_id: str | None = None,
    task_path: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Record a message about to be sent. Returns ``(record, already_done)``.

    ``already_done`` is true when an earlier attempt of the same step finished (sent, or stored
    in the outbox): do not send again. A record left ``sending`` or ``failed`` by an earlier
    attempt is taken over (at-least-once: a crash in the middle of a send may repeat it).
    """
    now = time.time()
    status = "outbox" if backend == "outbox" else "sending"
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "idempotency_key": idempotency_key,
        "execution_id": execution_id,
        "namespace": namespace,
        "flow_id": flow_id,
        "task_path": task_path,
        "backend": backend,
        "status": status,
        "from_address": message.sender,
        "recipients": message.recipients(),
        "subject": message.subject,
        "message": message.describe(),
        "message_id": message.message_id,
        "delivery": {},
        "events": [],
        "attempts": 1,
        "created_at": now,
        "updated_at": now,
        "sent_at": now if status == "outbox" else None,
    }
    existing = _by_key(store, idempotency_key)
    if existing is not None and existing["status"] in DONE:
        return existing, True
    if backend == "outbox":
        _store_attachments(store, message, values["message"], execution_id)
    if existing is None:
        try:
            with store.engine.begin() as conn:
                conn.execute(insert(MESSAGES).values(**values))
            return values, False
        except IntegrityError:  # a concurrent attempt of the same step got there first
            existing = _by_key(store, idempotency_key)
            if existing is None or existing["status"] in DONE:
                return existing or values, existing is not None
    taken = {
        "backend": backend,
        "status": status,
        "message": values["message"],
        "recipients": values["recipients"],
        "subject": values["subject"],
        "attempts": existing["attempts"] + 1,
        "error": None,
        "updated_at": now,
        "sent_at": values["sent_at"],
    }
    with store.engine.begin() as conn:
        conn.execute(update(MESSAGES).where(MESSAGES.c.id == existing["id"]).values(**taken))
    existing.update(taken)
    return existing, False


def _by_key(store: TaskStore, idempotency_key: str) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(MESSAGES).where(MESSAGES.c.idempotency_key == idempotency_key)).first()
    return dict(row._mapping) if row else None


def _store_attachments(store: TaskStore, message: Message, described: dict[str, Any], execution_id: str | None) -> None:
    for att, entry in zip(message.attachments, described["attachments"], strict=True):
        entry["blob"] = store.put_blob(att.content, execution_id=execution_id, content_type=att.content_type)


def mark_sent(store: TaskStore, message_id: str, *, provider_id: str | None, result: dict[str, Any]) -> None:
    now = time.time()
    with store.engine.begin() as conn:
        conn.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id == message_id)
            .values(status="sent", provider_id=provider_id, result=result, sent_at=now, updated_at=now)
        )


def mark_failed(store: TaskStore, message_id: str, error: dict[str, Any]) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            update(MESSAGES).where(MESSAGES.c.id == message_id).values(status="failed", error=error, updated_at=time.time())
        )


def list_messages(
    store: TaskStore,
    *,
    status: str | None = None,
    backend: str | None = None,
    execution_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
    after: list[Any] | None = None,
) -> list[dict[str, Any]]:
    """Newest first, without bodies (a page after ``(created_at, id)``). ``status="outbox"`` is the outbox."""
    query = select(*SUMMARY_COLUMNS)
    if status:
        query = query.where(MESSAGES.c.status == status)
    if backend:
        query = query.where(MESSAGES.c.backend == backend)
    if execution_id:
        query = query.where(MESSAGES.c.execution_id == execution_id)
    query = keyset.page(query, ((MESSAGES.c.created_at, True), (MESSAGES.c.id, False)), after, limit).offset(offset)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def get_message(store: TaskStore, message_id: str) -> dict[str, Any]:
    """One message in full, by id or an unambiguous id prefix."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(MESSAGES).where(MESSAGES.c.id.startswith(message_id, autoescape=True)).limit(2)).all()
    if not rows:
        raise NotFound(f"email message {message_id} not found")
    if len(rows) > 1:
        raise NotFound(f"email message id prefix {message_id!r} is ambiguous; give more characters")
    return dict(rows[0]._mapping)


def attachment_content(store: TaskStore, message_id: str, index: int) -> tuple[str, str, bytes]:
    """``(filename, content_type, bytes)`` of an outbox message's attachment."""
    row = get_message(store, message_id)
    attachments = row["message"].get("attachments", [])
    if not 0 <= index < len(attachments) or "blob" not in attachments[index]:
        raise NotFound(f"email message {message_id} has no stored attachment {index}")
    entry = attachments[index]
    return entry["filename"], entry["content_type"], store.get_blob(entry["blob"])


def record_events(store: TaskStore, events: list[dict[str, Any]]) -> int:
    """Apply provider delivery events (SendGrid event webhook shape); returns how many matched.

    An event is matched by the ``hub_message_id`` custom arg, else by ``sg_message_id``'s prefix
    (the ``X-Message-Id`` the send returned). Repeated events (same ``sg_event_id``) count once.
    """
    matched = 0
    for event in events:
        if not isinstance(event, dict):
            continue
        with store.engine.begin() as conn:
            row = _find_for_event(conn, event)
            if row is None:
                continue
            matched += 1
            seen = {e.get("sg_event_id") for e in row["events"] if e.get("sg_event_id")}
            if event.get("sg_event_id") and event["sg_event_id"] in seen:
                continue
            entry = {
                k: event[k]
                for k in ("event", "email", "timestamp", "reason", "status", "type", "response", "url", "sg_event_id")
                if k in event
            }
            events_list = [*row["events"], entry]
            delivery = dict(row["delivery"])
            email = str(event.get("email", "")).lower()
            current = delivery.get(email)
            if email and (current is None or float(event.get("timestamp", 0)) >= float(current.get("timestamp", 0))):
                delivery[email] = {"event": event.get("event"), "timestamp": event.get("timestamp")}
            conn.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id == row["id"])
                .values(events=events_list, delivery=delivery, updated_at=time.time())
            )
    return matched


def _find_for_event(conn: Any, event: dict[str, Any]) -> dict[str, Any] | None:
    ours = event.get("hub_message_id")
    if ours:
        row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == str(ours))).first()
        if row is not None:
            return dict(row._mapping)
    sg_id = str(event.get("sg_message_id") or "")
    if sg_id:
        provider_id = sg_id.split(".", 1)[0]
        row = conn.execute(select(MESSAGES).where(MESSAGES.c.provider_id == provider_id)).first()
        if row is not None:
            return dict(row._mapping)
    return None
