"""HTTP endpoints for email: read the outbox and delivery records, receive SendGrid's event webhook.

The hub's API serves :data:`router` under ``/v1``: the reads need an API key with the ``read``
scope, the webhook is authenticated by SendGrid's signature. Elsewhere, mount
``app.include_router(email_router())``; by default the store is taken from
``request.app.state.store`` or ``app.state.hub`` (pass ``get_store`` to wire it differently)::

    GET  /v1/email/outbox                        messages stored, not sent (newest first)
    GET  /v1/email/messages?status=&backend=&execution_id=&limit=&offset=
    GET  /v1/email/messages/{id}                 one message in full (id or unambiguous prefix)
    GET  /v1/email/messages/{id}/attachments/{n} an outbox message's attachment
    POST /v1/email/sendgrid/events               SendGrid event webhook (signed, ECDSA)
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from connectors.email import outbox
from connectors.email.settings import EmailSettings
from hub.core import keyset
from hub.core.errors import NotFound
from hub.core.tasks import TaskStore

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def _app_store(request: Request) -> TaskStore:
    state = request.app.state
    store = getattr(state, "store", None)
    if store is None and getattr(state, "hub", None) is not None:
        store = state.hub.engine.store
    if store is None:
        raise HTTPException(503, "the hub's store is not open")
    return store  # type: ignore[no-any-return]


def _settings(request: Request) -> EmailSettings:
    """The email section of the hub's settings (an app with only ``state.store``: read here)."""
    hub = getattr(request.app.state, "hub", None)
    return hub.engine.settings.section(EmailSettings) if hub is not None else EmailSettings()


def verify_sendgrid_signature(public_key: str, payload: bytes, signature: str, timestamp: str) -> bool:
    """SendGrid's signed event webhook: ECDSA (P-256, SHA-256) over ``timestamp + body``."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from sendgrid.helpers.eventwebhook import EventWebhook

    try:
        verifier = EventWebhook(public_key)
        return bool(verifier.verify_signature(payload.decode("utf-8"), signature, timestamp))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, UnsupportedAlgorithm):
        return False


CURSOR_HELP = "The `next` of the previous page (the Hub-Next-Cursor header); omit for the first page."


def _page(
    request: Request, response: Response, store: TaskStore, cursor: str | None, limit: int, offset: int, **filters: Any,
) -> list[dict[str, Any]]:
    """One page of messages; the next one in ``Link: <url>; rel="next"`` and ``Hub-Next-Cursor``."""
    after = None
    if cursor:
        if offset:
            raise HTTPException(400, "give cursor or offset, not both")
        try:
            after = keyset.decode(cursor, (float | int, str))
        except ValueError as exc:
            raise HTTPException(400, f"{exc}; pass the Hub-Next-Cursor of the previous page") from None
    limit = min(limit, 500)
    rows = outbox.list_messages(store, limit=limit + 1, offset=offset, after=after, **filters)
    following = keyset.following(rows, limit, lambda r: [r["created_at"], r["id"]])
    if following is not None:
        url = request.url.remove_query_params(["cursor", "offset"]).include_query_params(cursor=following)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
        response.headers["Hub-Next-Cursor"] = following
    return rows


def email_router(
    get_store: Callable[..., TaskStore] | None = None, *, prefix: str = "/v1/email", read: Sequence[Any] = ()
) -> APIRouter:
    """The endpoints; ``read``: dependencies (an auth check) of the reads, not of the webhook."""
    store_dep = Depends(get_store or _app_store)
    router = APIRouter(prefix=prefix, tags=["email"])
    guards = list(read)

    @router.get("/outbox", dependencies=guards)
    def list_outbox(
        request: Request, response: Response,
        limit: int = Query(50, ge=1, le=1_000_000), offset: int = Query(0, ge=0, le=1_000_000),
        cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP), store: TaskStore = store_dep,
    ) -> list[dict[str, Any]]:
        """Messages kept in the outbox, newest first; the next page in ``Link`` / ``Hub-Next-Cursor``."""
        return _page(request, response, store, cursor, limit, offset, status="outbox")

    @router.get("/messages", dependencies=guards)
    def list_messages(
        request: Request,
        response: Response,
        status: str | None = None,
        backend: str | None = None,
        execution_id: str | None = None,
        limit: int = Query(50, ge=1, le=1_000_000),
        offset: int = Query(0, ge=0, le=1_000_000),
        cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
        store: TaskStore = store_dep,
    ) -> list[dict[str, Any]]:
        """Messages, newest first; the next page in ``Link`` / ``Hub-Next-Cursor``."""
        return _page(request, response, store, cursor, limit, offset, status=status, backend=backend,
                     execution_id=execution_id)

    @router.get("/messages/{message_id}", dependencies=guards)
    def get_message(message_id: str, store: TaskStore = store_dep) -> dict[str, Any]:
        try:
            return outbox.get_message(store, message_id)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None

    @router.get("/messages/{message_id}/attachments/{index}", dependencies=guards)
    def get_attachment(message_id: str, index: int, store: TaskStore = store_dep) -> Response:
        try:
            filename, content_type, data = outbox.attachment_content(store, message_id, index)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        safe = filename.replace('"', "").replace("\r", "").replace("\n", "")
        return Response(data, media_type=content_type, headers={"Content-Disposition": f'attachment; filename="{safe}"'})

    @router.post("/sendgrid/events")
    async def sendgrid_events(request: Request, store: TaskStore = store_dep) -> dict[str, int]:
        key = _settings(request).sendgrid_webhook_public_key
        if not key:
            raise HTTPException(
                503, "SendGrid event webhook is not configured: set HUB_EMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY"
            )
        body = await request.body()
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp or not verify_sendgrid_signature(key, body, signature, timestamp):
            raise HTTPException(403, "invalid SendGrid event webhook signature")
        try:
            events = json.loads(body)
        except ValueError:
            raise HTTPException(400, "the body is not JSON") from None
        if not isinstance(events, list):
            raise HTTPException(400, "expected a JSON array of events")
        matched = outbox.record_events(store, events)
        return {"received": len(events), "matched": matched}

    return router


def _hub_router() -> APIRouter:
    from hub.core.host import SCOPES, lookup

    return email_router(prefix="/email", read=[Depends(lookup(SCOPES)("read"))])


router = _hub_router()  # mounted by the hub's API under /v1
