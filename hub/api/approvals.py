"""Approval endpoints, mounted under ``/v1``.

- ``GET /approvals`` (the caller's inbox), ``GET /approvals/{id}``, ``POST /approvals/{id}/decision``
  (scope ``approve``), ``POST /approvals/{id}/link`` (a personal web link), audit log reads;
- ``GET|POST /approvals/links/{token}``: the approval page behind a signed link (GET shows, POST decides);
- ``POST /slack/interactions``: Slack's interactivity Request URL.

The link pages and the Slack endpoint take no API key: the link's HMAC and Slack's request
signature authenticate them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from hub.api.auth import Principal, require
from hub.api.context import Hub, get_hub
from hub.api.errors import ApiError
from hub.api.paging import CURSOR_HELP, NEXT_HEADERS, link_next, next_cursor, start_after
from hub.approvals import install, slack, web
from hub.approvals.identities import canonical
from hub.approvals.service import Approvals, Decided, Refused, iso
from hub.approvals.voting import approvals, current_values

log = logging.getLogger(__name__)

@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    hub = getattr(app.state, "hub", None)
    if hub is not None:  # wire the service now, so kills cancel gates from the start
        install(hub.engine)
    yield


router = APIRouter(tags=["approvals"], lifespan=lifespan)


def get_approvals(hub: Hub = Depends(get_hub)) -> Approvals:
    return install(hub.engine)


# -- models ----------------------------------------------------------------------------------------


class Vote(BaseModel):
    voter: str
    identity: str
    channel: str
    vote: str
    comment: str | None = None
    at: str | None = None
    revision: int = Field(0, description="The revision of the values this vote was made on.")
    changes: dict[str, Any] | None = Field(None, description="What this vote edited: {field: {from, to}}.")
    counts: bool = Field(True, description="False for an approval of values edited since (it no longer counts).")


class Approval(BaseModel):
    id: str
    execution_id: str
    path: str
    flow: str
    title: str
    message: str
    state: str
    required: int
    approvers: list[str]
    form: dict[str, Any]
    created_at: str | None
    deadline: str | None
    decision: str | None = None
    decided_by: dict[str, Any] | None = None
    comment: str | None = None
    form_values: dict[str, Any] | None = None
    values: dict[str, Any] = Field(
        default_factory=dict, description="The form's current values: the latest edit, else the defaults."
    )
    revision: int = Field(0, description="How many times the values were edited; give it back when deciding.")
    approvals: int = Field(0, description="Approvals that count (made on the current values).")
    votes: list[Vote] = Field(default_factory=list)


class ApprovalList(BaseModel):
    items: list[Approval]
    next: str | None = Field(None, description="The cursor of the next page (null on the last page).")


class DecisionRequest(BaseModel):
    decision: Literal["approve", "reject"]
    comment: str | None = Field(None, max_length=10_000, description="A note; the reason when rejecting.")
    form: dict[str, Any] | None = Field(None, description="Edited form values (typed as the form declares).")
    approver: str | None = Field(
        None, max_length=320, description="Who decides; only on a server without API keys (the key says who otherwise)."
    )
    revision: int | None = Field(
        None, ge=0, le=1_000_000,
        description="The approval's revision you decide on (from GET); refused with 409 ValuesChanged when "
        "someone edited the values since.",
    )


class DecisionResult(BaseModel):
    approval: Approval
    decided: bool = Field(description="This vote closed the approval.")
    duplicate: bool = Field(description="The same vote was counted before; nothing changed.")


class Link(BaseModel):
    url: str
    expires_at: str | None


class AuditEntry(BaseModel):
    id: int
    gate_id: str | None
    at: str | None
    channel: str
    actor: str | None
    action: str
    outcome: str
    reason: str | None
    detail: dict[str, Any] | None


def _approval(service: Approvals, gate: dict[str, Any], with_votes: bool = True) -> Approval:
    tally = service.tally(gate)
    votes = [
        Vote(voter=v["voter"], identity=v["identity"], channel=v["channel"], vote=v["vote"], comment=v["comment"],
             at=iso(v["at"]), revision=v["revision"], changes=v["changes"], counts=v["counts"])
        for v in (tally if with_votes else [])
    ]
    return Approval(
        values=current_values(gate), revision=gate["revision"], approvals=approvals(gate, tally),
        id=gate["id"], execution_id=gate["execution_id"], path=gate["path"],
        flow=f"{gate['namespace']}.{gate['flow_id']}", title=gate["title"], message=gate["message"],
        state=gate["state"], required=gate["required"], approvers=service.allowed(gate), form=gate["form"] or {},
        created_at=iso(gate["created_at"]), deadline=iso(gate["deadline"]), decision=gate["decision"],
        decided_by=gate["decided_by"], comment=gate["comment"], form_values=gate["form_values"], votes=votes,
    )


def identities_of(hub: Hub, principal: Principal) -> list[str]:
    """An API caller's identities: its key by name and by id."""
    if principal.key_id is None:
        return []
    found = [f"key:{principal.key_id}"]
    with contextlib.suppress(Exception):  # the bootstrap key has no row
        found.insert(0, f"key:{hub.api_store.get_key(principal.key_id)['name']}")
    return found


def _api_error(refused: Refused) -> ApiError:
    kind = "".join(part.capitalize() for part in refused.reason.split("_"))
    details = [{"path": f"form.{k}", "message": v} for k, v in refused.details.items()]
    return ApiError(refused.status, str(refused), type=kind, details=details)


def after_vote(service: Approvals, result: Decided, background: BackgroundTasks) -> None:
    """After a counted vote: continue the execution if it decided, else show the vote in the messages."""
    if result.decided:
        background.add_task(service.after_decision, result.gate)
    elif not result.duplicate:
        background.add_task(service.refresh_messages, result.gate["id"])


# -- the API ---------------------------------------------------------------------------------------


@router.get("/approvals", response_model=ApprovalList)
def list_approvals(
    state: Literal["pending", "approved", "rejected", "timed_out", "cancelled", "all"] = "pending",
    mine: bool = Query(True, description="Only approvals the caller may decide (its inbox)."),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
    offset: int = Query(0, ge=0, le=1_000_000, description="Items to skip (prefer `cursor`)."),
    hub: Hub = Depends(get_hub),
    service: Approvals = Depends(get_approvals),
    principal: Principal = Depends(require("read")),
) -> ApprovalList:
    """Approvals, newest first; by default the caller's pending ones. ``next`` is the cursor of the next page."""
    wanted = None if state == "all" else state
    who = identities_of(hub, principal) if mine else []
    after = start_after(cursor, (float | int, str), offset)
    if who:
        gates = _inbox(service, wanted, who, limit + 1 + offset, after)[offset:]
    else:
        gates = service.gates(state=wanted, limit=limit + 1, offset=offset, after=after)
    following = next_cursor(gates, limit, lambda g: [g["created_at"], g["id"]])
    return ApprovalList(items=[_approval(service, g, with_votes=False) for g in gates], next=following)


def _inbox(
    service: Approvals, state: str | None, who: list[str], wanted: int, after: list[Any] | None
) -> list[dict[str, Any]]:
    """The caller's own gates: pages of the list read through the index, filtered, until enough."""
    found: list[dict[str, Any]] = []
    while len(found) < wanted:
        batch = service.gates(state=state, limit=200, after=after)
        found += [g for g in batch if service.voter_for(g, who) is not None]
        if len(batch) < 200:
            break
        after = [batch[-1]["created_at"], batch[-1]["id"]]
    return found[:wanted]


@router.get("/approvals/audit", response_model=list[AuditEntry], responses={200: {"headers": NEXT_HEADERS}})
def approvals_audit(
    request: Request, response: Response,
    gate_id: str | None = Query(None, max_length=64), limit: int = Query(200, ge=1, le=5000),
    cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
    service: Approvals = Depends(get_approvals), _: Any = Depends(require("read")),
) -> list[AuditEntry]:
    """Every decision attempt (accepted or refused, and why), newest first; the next page in ``Link``."""
    return _audit_page(request, response, service, gate_id, limit, cursor)


def _audit_page(
    request: Request, response: Response, service: Approvals, gate_id: str | None, limit: int, cursor: str | None,
) -> list[AuditEntry]:
    rows = service.audit(gate_id, limit + 1, start_after(cursor, (int,)))
    link_next(request, response, next_cursor(rows, limit, lambda r: [r["id"]]))
    return [AuditEntry(**{**row, "at": iso(row["at"])}) for row in rows]


@router.get("/approvals/links/{token}", response_class=HTMLResponse, include_in_schema=False)
def link_page(token: str, service: Approvals = Depends(get_approvals)) -> HTMLResponse:
    """The approval page of a signed link. Showing it decides nothing (mail scanners open links)."""
    try:
        claims, gate, link = service.read_link(token)
    except Refused as refused:
        return HTMLResponse(web.error_page("This link cannot be used", str(refused)), status_code=refused.status)
    voter = service.voter_for(gate, [claims.identity])
    tally = service.tally(gate)
    mine = next((v for v in tally if v["voter"] == voter), None)
    service.record(gate["id"], claims.channel, claims.identity, "view", "info")
    if mine is not None and mine["stale"] and gate["state"] == "pending":  # the values changed since: decide again
        return HTMLResponse(web.form_page(gate, claims.identity, f"./{token}", votes=tally, notice=web.CHANGED))
    if gate["state"] != "pending" or link["used_at"] is not None or mine is not None:
        return HTMLResponse(web.outcome_page(gate, tally))
    return HTMLResponse(web.form_page(gate, claims.identity, f"./{token}", votes=tally))


@router.post("/approvals/links/{token}", response_class=HTMLResponse, include_in_schema=False)
async def link_decide(
    token: str, request: Request, background: BackgroundTasks, service: Approvals = Depends(get_approvals)
) -> HTMLResponse:
    """The page's form: decide as the link's approver (once)."""
    fields = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace"),
                                             keep_blank_values=True).items()}
    vote = fields.get("decision", "")
    try:
        claims, gate, link = service.read_link(token, vote or "decide")
    except Refused as refused:
        return HTMLResponse(web.error_page("This link cannot be used", str(refused)), status_code=refused.status)
    submitted = {k[6:]: v for k, v in fields.items() if k.startswith("field.")}
    comment = fields.get("comment", "")
    try:
        result = service.decide(
            gate["id"], [claims.identity], claims.channel, vote, comment=comment,
            form=submitted if vote == "approve" else None, from_text=True, link_id=claims.link_id,
            revision=web.shown_revision(fields),
        )
    except Refused as refused:
        if refused.reason in ("invalid_form", "values_changed"):
            invalid = refused.reason == "invalid_form"
            current = gate if invalid else service.get(gate["id"])
            page = web.form_page(current, claims.identity, f"./{token}", values=submitted if invalid else None,
                                 problems=refused.details, comment=comment, votes=service.tally(current),
                                 notice="Please correct the marked fields." if invalid else str(refused).capitalize() + ".")
            return HTMLResponse(page, status_code=refused.status)
        if refused.reason in ("already_decided", "link_used", "already_voted"):
            current = service.get(gate["id"])
            return HTMLResponse(web.outcome_page(current, service.tally(current), str(refused).capitalize() + "."),
                                status_code=409)
        return HTMLResponse(web.error_page("Your decision was not accepted", str(refused)), status_code=refused.status)
    after_vote(service, result, background)
    return HTMLResponse(web.outcome_page(result.gate, service.tally(result.gate)))


@router.get("/approvals/{approval_id}", response_model=Approval)
def get_approval(
    approval_id: str, service: Approvals = Depends(get_approvals), _: Any = Depends(require("read")),
) -> Approval:
    """One approval with its votes."""
    return _approval(service, service.reconcile(service.get(approval_id)))


@router.get("/approvals/{approval_id}/audit", response_model=list[AuditEntry], responses={200: {"headers": NEXT_HEADERS}})
def approval_audit(
    approval_id: str, request: Request, response: Response,
    limit: int = Query(200, ge=1, le=5000), cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
    service: Approvals = Depends(get_approvals), _: Any = Depends(require("read")),
) -> list[AuditEntry]:
    """One approval's audit entries, newest first; the next page in ``Link``."""
    service.get(approval_id)
    return _audit_page(request, response, service, approval_id, limit, cursor)


@router.post("/approvals/{approval_id}/decision", response_model=DecisionResult)
async def decide(
    approval_id: str, body: DecisionRequest, background: BackgroundTasks,
    hub: Hub = Depends(get_hub), service: Approvals = Depends(get_approvals),
    principal: Principal = Depends(require("approve")),
) -> DecisionResult:
    """Approve or reject as the calling API key (an approver must name it: ``key:<id or name>``)."""
    who = identities_of(hub, principal)
    if not who:
        if not body.approver:
            raise ApiError(400, "this server has no API keys, so say who decides: give 'approver' "
                                "(an email, a Slack user ID or key:<name>)")
        who = [canonical(body.approver)]
    elif body.approver and canonical(body.approver) not in who:
        raise ApiError(403, "'approver' is only for servers without API keys; the API key says who decides")
    service.get(approval_id)
    try:
        result = service.decide(approval_id, who, "api", body.decision, comment=body.comment, form=body.form,
                                revision=body.revision)
    except Refused as refused:
        raise _api_error(refused) from None
    after_vote(service, result, background)
    return DecisionResult(approval=_approval(service, result.gate), decided=result.decided, duplicate=result.duplicate)


@router.post("/approvals/{approval_id}/link", response_model=Link)
def personal_link(
    approval_id: str, hub: Hub = Depends(get_hub), service: Approvals = Depends(get_approvals),
    principal: Principal = Depends(require("approve")),
) -> Link:
    """A signed, single-use link to the approval page for the calling key (open it in a browser)."""
    gate = service.reconcile(service.get(approval_id))
    who = identities_of(hub, principal)
    if not who or service.voter_for(gate, who) is None:
        service.record(gate["id"], "api", who[0] if who else None, "link", "refused", "not_approver")
        raise ApiError(403, "only an approver of this request can get a link to decide it", type="NotApprover")
    if gate["state"] != "pending":
        raise ApiError(409, f"this request is {gate['state']}", type="AlreadyDecided")
    url = service.link(gate, who[0], "web")
    return Link(url=url, expires_at=iso(gate["link_expires_at"]))


# -- Slack -----------------------------------------------------------------------------------------


@router.post("/slack/interactions", status_code=200, responses={401: {}, 403: {}})
async def slack_interactions(
    request: Request, background: BackgroundTasks, service: Approvals = Depends(get_approvals)
) -> Response:
    """Slack's interactivity Request URL: verifies the request signature, answers at once, and
    handles the button press after the answer (Slack waits 3 seconds at most)."""
    body = await request.body()
    secret = service.settings.slack_signing_secret
    if secret is None:
        service.record(None, "slack", None, "interaction", "refused", "not_configured")
        raise ApiError(403, "Slack requests cannot be verified here: set HUB_SLACK_SIGNING_SECRET to the Slack "
                            "app's signing secret", type="NotConfigured")
    try:
        slack.verify(secret.get_secret_value(), request.headers, body, time.time(), service.settings.slack_max_age)
        action = slack.parse(body)
    except slack.BadRequest as exc:
        service.record(None, "slack", None, "interaction", "refused", exc.reason, {"message": str(exc)})
        if exc.reason in ("bad_signature", "stale"):
            raise ApiError(401, f"the Slack request is refused: {exc}") from None
        return Response(status_code=200)  # a valid request we do not handle: acknowledge it
    background.add_task(handle_slack_action, service, action)
    return Response(status_code=200)


async def handle_slack_action(service: Approvals, action: slack.Action) -> None:
    identity = f"slack:{action.user_id}"
    try:
        gate = service.reconcile(service.get(action.gate_id))
    except Exception:
        service.record(None, "slack", identity, "interaction", "refused", "unknown_gate", {"gate_id": action.gate_id})
        await _reply(action, "This approval request is not known to the hub.")
        return
    if action.action_id == slack.OPEN_FORM:
        if service.voter_for(gate, [identity]) is None:
            service.record(gate["id"], "slack", identity, "view", "refused", "not_approver")
            await _reply(action, "You are not among the approvers of this request.")
        elif gate["state"] != "pending":
            await _reply(action, f"This request is already {gate['state'].replace('_', ' ')}.")
        else:
            url = service.link(gate, identity, "slack")
            service.record(gate["id"], "slack", identity, "view", "info", None, {"link": "sent"})
            await _reply(action, f"Your personal link to review, edit and decide: <{url}|open the form>")
        return
    vote = "approve" if action.action_id == slack.APPROVE else "reject"
    try:
        result = service.decide(gate["id"], [identity], "slack", vote, revision=action.revision)
    except Refused as refused:
        await _reply(action, f"Not counted: {refused}.")
        if refused.reason in ("already_decided", "cancelled", "values_changed"):
            await service.refresh_messages(gate["id"])
        return
    if result.decided:
        await service.after_decision(result.gate)
    elif not result.duplicate:
        await service.refresh_messages(gate["id"])
        count = approvals(result.gate, service.tally(result.gate))
        await _reply(action, f"Your approval is counted ({count} of {gate['required']}).")


async def _reply(action: slack.Action, text: str) -> None:
    """An ephemeral answer to the person who pressed the button (through the response_url)."""
    if not action.response_url:
        return
    from hub.net import http_client

    try:
        async with http_client(timeout=10) as client:
            await client.post(action.response_url, json={"response_type": "ephemeral", "replace_original": False,
                                                         "text": text})
    except Exception as exc:
        log.warning("could not answer a Slack interaction: %s", exc)
