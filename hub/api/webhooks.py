"""``POST /v1/webhooks/{namespace}/{flow}/{trigger_id}``: a webhook trigger starts an execution.

A trigger authenticates requests with its ``secret`` (``?key=`` or ``X-Hub-Key``) and/or its
``signing_secret``: ``X-Hub-Signature: sha256=<hex>`` of HMAC-SHA256 over ``<timestamp>.<raw body>``
with ``X-Hub-Timestamp`` (epoch seconds, an integer) inside the trigger's ``tolerance``. A trigger with
neither needs an API key with the ``run`` scope. ``Idempotency-Key`` deduplicates for 24 h.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from hub.api import guard
from hub.api.auth import authenticate, token_from
from hub.api.context import Hub, get_hub
from hub.api.errors import ApiError
from hub.api.flows import runnable
from hub.api.models import WebhookAccepted, errors
from hub.engine.states import State
from hub.errors import ExpressionError, NotFound
from hub.flow.models import Flow, WebhookTrigger
from hub.store.api_store import KeyTaken
from hub.store.store import new_id

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

SIGNATURE_HEADER = "x-hub-signature"
TIMESTAMP_HEADER = "x-hub-timestamp"
KEY_HEADER = "x-hub-key"
IDEMPOTENCY_HEADER = "idempotency-key"
HIDDEN_HEADERS = {"authorization", "x-api-key", KEY_HEADER, SIGNATURE_HEADER, "cookie", "proxy-authorization"}


def sign(secret: str, timestamp: str | int | float, body: bytes) -> str:
    """The ``X-Hub-Signature`` value for ``body`` sent at ``timestamp`` (what senders compute)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _trigger(flow: Flow, trigger_id: str) -> WebhookTrigger:
    for trigger in flow.triggers:
        if isinstance(trigger, WebhookTrigger) and trigger.id == trigger_id:
            if trigger.disabled:
                raise ApiError(409, f"webhook trigger {trigger_id} of {flow.key} is disabled", type="TriggerDisabled")
            return trigger
    raise NotFound(f"flow {flow.key} has no webhook trigger {trigger_id!r}")


def _secret(hub: Hub, value: str, flow: Flow) -> str:
    try:
        rendered = hub.engine.expr.render(value, {"secret": hub.engine.secrets.get}, "trigger secret")
    except ExpressionError as exc:
        raise ApiError(503, f"the webhook of {flow.key} cannot check requests: {exc}", type="Misconfigured") from None
    return str(rendered)


def check_request(hub: Hub, request: Request, raw: bytes, flow: Flow, trigger: WebhookTrigger) -> None:
    """Authenticate a webhook call; raises 401 on a wrong key, a bad signature or a stale timestamp."""
    if trigger.secret is None and trigger.signing_secret is None:
        principal = authenticate(hub, token_from(request))
        if not principal.allows("run"):
            raise ApiError(403, f"the API key {principal.name} lacks the 'run' scope")
        return
    if trigger.secret is not None:
        given = request.query_params.get("key") or request.headers.get(KEY_HEADER) or ""
        if not hmac.compare_digest(given.encode(), _secret(hub, trigger.secret, flow).encode()):
            raise ApiError(401, "wrong or missing webhook key (send ?key= or X-Hub-Key)", type="BadWebhookKey")
    if trigger.signing_secret is not None:
        stamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not stamp or not signature:
            raise ApiError(401, "missing X-Hub-Timestamp or X-Hub-Signature header", type="BadSignature")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):  # not nan, inf, 1e9, +1, 1.5
            raise ApiError(401, "X-Hub-Timestamp must be the epoch seconds as an integer (e.g. 1700000000)",
                           type="BadSignature")
        if abs(time.time() - int(stamp)) > trigger.tolerance:
            raise ApiError(401, f"X-Hub-Timestamp is outside the {trigger.tolerance:g}s replay window; "
                           "sign the request again with the current time", type="StaleTimestamp")
        expected = sign(_secret(hub, trigger.signing_secret, flow), stamp, raw)
        if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
            raise ApiError(401, "the signature does not match: HMAC-SHA256 over '<timestamp>.<raw body>' "
                           "as 'sha256=<hex>'", type="BadSignature")


def _body(request: Request, raw: bytes) -> Any:
    if not raw:
        return None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the body is not valid JSON") from None
        except RecursionError:
            raise ApiError(400, f"the body's JSON is nested more than {guard.MAX_DEPTH} levels deep") from None
    if kind == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    return raw.decode("utf-8", "replace")


def trigger_data(request: Request, trigger_id: str, body: Any) -> dict[str, Any]:
    from hub.telemetry.propagation import trace_trigger

    data = {
        "type": "webhook",
        "id": trigger_id,
        "body": body,
        "headers": {k: v for k, v in request.headers.items() if k not in HIDDEN_HEADERS},
        "query": {k: v for k, v in request.query_params.items() if k not in ("key", "wait")},
    }
    return trace_trigger(data, request.headers)  # an incoming traceparent is continued


def trigger_inputs(hub: Hub, flow: Flow, trigger: WebhookTrigger, data: dict[str, Any]) -> dict[str, Any]:
    """The trigger's ``inputs`` templates rendered over ``trigger.*``; without them, the fields of a
    JSON object body that are declared inputs."""
    if trigger.inputs:
        scope = {"trigger": data, "secret": hub.engine.secrets.get}
        return dict(hub.engine.expr.render(trigger.inputs, scope, f"triggers.{trigger.id}.inputs"))
    body = data["body"]
    if isinstance(body, dict):
        declared = {spec.id for spec in flow.inputs}
        return {k: v for k, v in body.items() if k in declared}
    return {}


@router.post(
    "/{namespace}/{flow_id}/{trigger_id}",
    response_model=WebhookAccepted,
    status_code=202,
    responses={200: {"model": WebhookAccepted, "description": "With ?wait=true: ended, outputs included"},
               **errors(400, 401, 403, 404, 409, 422)},
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {}}, "text/plain": {"schema": {"type": "string"}}}}},
)
async def webhook(
    namespace: str, flow_id: str, trigger_id: str, request: Request,
    wait: bool = Query(False, description="Hold the request until the execution ends; answer its outputs."),
    key: str | None = Query(None, description="The trigger's secret key (or send X-Hub-Key)."),
    hub: Hub = Depends(get_hub),
) -> JSONResponse:
    """Start an execution from a webhook call; the body, headers and query become ``trigger.*``."""
    raw = await request.body()  # at most HUB_API_MAX_BODY bytes (guard.BodyLimit)
    revision, flow = runnable(hub, namespace, flow_id)
    trigger = _trigger(flow, trigger_id)
    check_request(hub, request, raw, flow, trigger)
    body = _body(request, raw)
    guard.check_storable(body, "body")
    data = trigger_data(request, trigger_id, body)
    inputs = trigger_inputs(hub, flow, trigger, data)

    execution_id = new_id()
    replayed = False
    idem_key = request.headers.get(IDEMPOTENCY_HEADER)
    along = None
    body_hash = hashlib.sha256(raw).hexdigest()
    if idem_key:
        if len(idem_key) > 255:
            raise ApiError(400, "Idempotency-Key is longer than 255 characters")
        # claimed in the transaction that creates the execution: a start that fails (or a process
        # that dies before the commit) leaves the key free, so the sender's retry is not lost
        along = hub.api_store.claim_along(f"webhook:{flow.key}.{trigger_id}", idem_key, body_hash, execution_id)
    try:
        await hub.engine.start(flow, inputs, trigger=data, execution_id=execution_id, revision=revision, along=along)
    except KeyTaken as taken:
        if taken.earlier["body_hash"] != body_hash:
            raise ApiError(422, "this Idempotency-Key was used within 24 h with a different body; "
                           "use a new key for a new request", type="IdempotencyKeyReused") from None
        execution_id, replayed = taken.earlier["execution_id"], True
    return await _answer(hub, execution_id, replayed, wait)


async def _answer(hub: Hub, execution_id: str, replayed: bool, wait: bool) -> JSONResponse:
    if wait:
        row = await hub.waiter.wait(execution_id, hub.settings.wait_timeout)
        if row is not None:
            body = WebhookAccepted(id=execution_id, state=row["state"], replayed=replayed, outputs=row["outputs"])
            return JSONResponse(body.model_dump(mode="json"), status_code=200)
    state = str(State.QUEUED)  # just created and queued: no need to read it back
    if replayed or wait:  # an earlier execution, or one that ran past the wait: say where it is
        with contextlib.suppress(NotFound):  # (an execution deleted since its key was claimed)
            state = hub.engine.store.get_execution(execution_id)["state"]
    body = WebhookAccepted(id=execution_id, state=state, replayed=replayed)
    return JSONResponse(body.model_dump(mode="json"), status_code=202)
