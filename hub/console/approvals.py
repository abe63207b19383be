"""The approvals inbox: mine / pending / decided, one request with its message, the typed form
holding the LLM's draft, votes and who voted, the audit trail, and the decision."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from hub.api.approvals import identities_of
from hub.api.errors import ApiError
from hub.approvals import install
from hub.approvals.forms import FormField
from hub.approvals.identities import canonical, display
from hub.approvals.service import Approvals, Refused
from hub.approvals.voting import approvals, current_values
from hub.approvals.web import shown_revision
from hub.console.render import render
from hub.console.session import ConsoleRoute, Viewer, form, hub_of, viewer

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

TABS = ("mine", "pending", "decided")
CHANNEL = "console"


def service_of(request: Request) -> Approvals:
    return install(hub_of(request).engine)


def _fields(gate: dict[str, Any]) -> list[tuple[str, FormField]]:
    return [(name, FormField.model_validate(spec)) for name, spec in (gate["form"] or {}).items()]


@router.get("/approvals")
def inbox(request: Request, tab: str = "mine", who: Viewer = Depends(viewer)) -> Response:
    """``mine``: pending requests this key may decide; ``pending``: all open; ``decided``: closed ones."""
    if tab not in TABS:
        raise ApiError(404, f"no inbox tab {tab!r}; tabs: {', '.join(TABS)}")
    service = service_of(request)
    me = identities_of(hub_of(request), who.principal)
    if tab == "decided":
        gates = [g for g in service.gates(state=None, limit=300) if g["state"] != "pending"][:100]
    else:
        gates = service.gates(state="pending", limit=500)
        if tab == "mine" and me:
            gates = [g for g in gates if service.voter_for(g, me) is not None]
    counts = {g["id"]: approvals(g, service.tally(g)) for g in gates[:100]}  # approvals that count
    return render(request, who, "approvals.html", title="Approvals", gates=gates[:100], tab=tab, tabs=TABS,
                  me=[display(i) for i in me], counts=counts)


def _page(request: Request, who: Viewer, gate_id: str, *, status: int = 200, values: dict[str, Any] | None = None,
          problems: dict[str, str] | None = None, notice: str | None = None, comment: str = "") -> Response:
    service = service_of(request)
    gate = service.reconcile(service.get(gate_id))
    me = identities_of(hub_of(request), who.principal)
    voter = service.voter_for(gate, me) if me else None
    may_vote = gate["state"] == "pending" and who.can("approve") and (not me or voter is not None)
    if may_vote and notice is None and any(v["voter"] == voter and v["stale"] for v in service.tally(gate)):
        notice = "The values were edited since you approved; your approval no longer counts. Review and decide again."
    shown = values if values is not None else current_values(gate)
    votes = service.tally(gate)
    return render(
        request, who, "approval.html", status=status, title=gate["title"], gate=gate, fields=_fields(gate),
        values=shown, problems=problems or {}, notice=notice, comment=comment, votes=votes,
        counted=approvals(gate, votes),
        audit=service.audit(gate_id, 200), approvers=[display(a) for a in service.allowed(gate)], may_vote=may_vote,
        open_server=not who.auth_on, me=[display(i) for i in me], display=display,
    )


@router.get("/approvals/{gate_id}")
def approval_page(request: Request, gate_id: str, who: Viewer = Depends(viewer)) -> Response:
    return _page(request, who, gate_id)


@router.post("/approvals/{gate_id}/decide")
async def decide(request: Request, gate_id: str, who: Viewer = Depends(viewer)) -> Response:
    """Approve or reject as the signed-in key (on an open server, as the identity typed in)."""
    fields = await form(request, who)
    who.need("approve")
    service = service_of(request)
    me = identities_of(hub_of(request), who.principal)
    if not me:
        approver = fields.get("approver", "").strip()
        if not approver:
            return _page(request, who, gate_id, status=422, notice="Say who decides: this server has no API keys, "
                         "so give your email, Slack user ID or key:<name>.", comment=fields.get("comment", ""))
        me = [canonical(approver)]
    vote = fields.get("decision", "")
    submitted = {k[6:]: v for k, v in fields.items() if k.startswith("field.")}
    for name, spec in _fields(service.get(gate_id)):
        if spec.type == "bool" and f"field.{name}.present" in fields:
            submitted[name] = "true" if f"field.{name}" in fields else "false"
        submitted.pop(f"{name}.present", None)
    comment = fields.get("comment", "")
    try:
        result = service.decide(gate_id, me, CHANNEL, vote, comment=comment or None,
                                form=submitted if vote == "approve" else None, from_text=True,
                                revision=shown_revision(fields))
    except Refused as refused:
        if refused.reason == "invalid_form":
            return _page(request, who, gate_id, status=422, values=submitted, problems=refused.details,
                         notice="Please correct the marked fields.", comment=comment)
        return _page(request, who, gate_id, status=refused.status, notice=str(refused).capitalize() + ".",
                     comment=comment)
    if result.decided:
        hub_of(request).spawn(service.after_decision(result.gate))
    elif not result.duplicate:
        hub_of(request).spawn(service.refresh_messages(gate_id))
    return RedirectResponse(f"/approvals/{gate_id}?done={'decided' if result.decided else 'voted'}", status_code=303)
