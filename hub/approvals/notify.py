"""Sending approval requests, reminders and escalations, and keeping Slack messages current.

Each channel is reached through the notifier a plugin contributes for it (:mod:`hub.core.notify`):
the email connector's sends through ``email.send`` (SendGrid, SMTP or the outbox, with its
effectively-once records), the Slack connector's posts and re-draws Slack messages. Each notification is noted in ``approval_messages`` before it goes out, so a
re-run of the step does not send it twice.
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Any

from hub.approvals import slack, voting
from hub.approvals.identities import canonical, display
from hub.core.notify import Notice, Receipt, Updatable
from hub.errors import error_dict
from hub.tasks.base import TaskContext

if TYPE_CHECKING:
    from hub.approvals.service import Approvals

log = logging.getLogger(__name__)


async def send(
    service: Approvals, ctx: TaskContext, gate: dict[str, Any], purpose: str, channels: list[dict[str, Any]]
) -> int:
    """Notify ``channels`` about ``gate`` (``purpose``: request, escalation or reminder-<n>); returns
    how many messages went out."""
    sent = 0
    voted = {v["voter"] for v in service.tally(gate) if v["counts"]}  # an approval gone stale: remind again
    for channel in channels:
        for target in channel.get("to") or []:
            if channel["kind"] == "slack":
                sent += await _slack(service, ctx, gate, purpose, target)
            elif channel["kind"] == "email":
                sent += await _email(service, ctx, gate, purpose, target, voted)
    if sent:
        service.record(gate["id"], "hub", None, purpose.split("-")[0], "info", None, {"messages": sent})
    return sent


def notifier(channel: str) -> Any:
    """The notifier a plugin contributes for ``channel`` (``hub.notifier("slack", ...)``)."""
    from hub.errors import TaskError
    from hub.tasks.registry import default_registry

    plugins = default_registry().plugins
    found = plugins.find("notifier", channel) if plugins is not None else None
    if found is None:
        raise TaskError(f"no plugin reaches people by {channel!r}; install the {channel} connector", retryable=False)
    target = found.ref.load()
    return target() if isinstance(target, type) else target


async def _slack(service: Approvals, ctx: TaskContext, gate: dict[str, Any], purpose: str, target: str) -> int:
    if not service.remember_message(gate["id"], "slack", purpose, target):
        return 0
    row = next(m for m in service.messages(gate["id"]) if m["purpose"] == purpose and m["target"] == target)
    try:
        if purpose.startswith("reminder"):
            original = next((m for m in service.messages(gate["id"])
                             if m["kind"] == "slack" and m["target"] == target and m["ts"]
                             and m["purpose"] in ("request", "escalation")), None)
            text = f"Reminder: this request is still waiting for a decision ({_progress(service, gate)})."
            reply_to = Receipt(channel=original["channel_id"], ts=original["ts"]) if original else None
            notice = Notice(subject=gate["title"], text=text, reply_to=reply_to)
        else:
            notice = Notice(subject=gate["title"], text=slack.fallback_text(gate),
                            blocks=slack.request_blocks(gate, service.allowed(gate), service.tally(gate)))
        receipt = await notifier("slack").send(ctx, target, notice, f"approval/{gate['id']}/{purpose}/{target}")
    except Exception as exc:
        service.update_message(row["id"], error=str(exc))
        ctx.log(f"approval: could not post to Slack {target}: {error_dict(exc)['message']}", "warning")
        return 0
    service.update_message(row["id"], channel_id=receipt.channel, ts=receipt.ts)
    return 1


async def _email(
    service: Approvals, ctx: TaskContext, gate: dict[str, Any], purpose: str, address: str, voted: set[str]
) -> int:
    identity = canonical(address)
    voter = service.voter_for(gate, [identity])
    if purpose.startswith("reminder") and (voter is None or voter in voted):
        return 0  # reminders go to approvers who have not decided yet
    if not service.remember_message(gate["id"], "email", purpose, address):
        return 0
    row = next(m for m in service.messages(gate["id"]) if m["purpose"] == purpose and m["target"] == address)
    link = service.link(gate, identity, "email") if voter is not None else None
    subject, text, body = email_content(service, gate, purpose, link)
    notice = Notice(subject=subject, text=text, html=body, sender=service.settings.email_from,
                    headers={"X-Hub-Approval": gate["id"]})
    try:
        receipt = await notifier("email").send(ctx, address, notice, f"approval/{gate['id']}/{purpose}/{address}")
    except Exception as exc:
        service.update_message(row["id"], error=str(exc))
        ctx.log(f"approval: could not email {address}: {error_dict(exc)['message']}", "warning")
        return 0
    service.update_message(row["id"], email_id=receipt.id)
    return 1


def _progress(service: Approvals, gate: dict[str, Any]) -> str:
    approvals = voting.approvals(gate, service.tally(gate))
    return f"{approvals} of {gate['required']} approval{'s' if gate['required'] > 1 else ''}"


def email_content(service: Approvals, gate: dict[str, Any], purpose: str, link: str | None) -> tuple[str, str, str]:
    """Subject, plain text and HTML of a request, reminder or escalation email."""
    kind = purpose.split("-")[0]
    prefix = {"request": "Approval needed", "reminder": "Reminder: approval needed",
              "escalation": "Escalated: approval needed"}.get(kind, "Approval needed")
    subject = f"{prefix}: {gate['title']}"[:200].replace("\n", " ").replace("\r", " ")
    form = gate["form"] or {}
    values = voting.current_values(gate)
    votes = service.tally(gate)
    lines = [gate["message"], ""]
    for name, value in values.items():
        lines.append(f"{form[name].get('label') or name}: {value if value is not None else '-'}")
    if form:
        lines.append("")
    who = ", ".join(display(a) for a in service.allowed(gate))
    lines.append(f"Approvers: {who} (needs {gate['required']})")
    lines += [f"Vote: {line}" for line in _vote_lines(votes)]
    if gate["deadline"]:
        lines.append(f"Decide before: {slack.when(gate['deadline']).split('|')[-1].rstrip('>')}")
    if link:
        lines += ["", f"Review and decide: {link}", "(the link is yours alone, works once and expires)"]
    else:
        lines += ["", "You are not among the approvers; this message is for your information."]
    text = "\n".join(lines)
    esc = html.escape
    rows = "".join(
        f"<tr><th align='left'>{esc(form[n].get('label') or n)}</th><td>{esc(str(v) if v is not None else '-')}</td></tr>"
        for n, v in values.items()
    )
    body = (
        f"<div style='font-family:sans-serif;max-width:40em'><h2>{esc(gate['title'])}</h2>"
        f"<p style='white-space:pre-wrap'>{esc(gate['message'])}</p>"
        + (f"<table>{rows}</table>" if rows else "")
        + f"<p>Approvers: {esc(who)} (needs {gate['required']})</p>"
        + "".join(f"<p>Vote: {esc(line)}</p>" for line in _vote_lines(votes))
        + (f"<p><a href='{esc(link)}' style='padding:.6em 1.2em;background:#1a7f37;color:#fff;"
           f"text-decoration:none;border-radius:4px'>Review and decide</a></p>"
           "<p style='color:#666'>The link is yours alone, works once and expires.</p>" if link else
           "<p>You are not among the approvers; this message is for your information.</p>")
        + "</div>"
    )
    return subject, text, body


def _vote_lines(votes: list[dict[str, Any]]) -> list[str]:
    lines = []
    for v in votes:
        edits = "; ".join(f"{k}: {c.get('from')} -> {c.get('to')}" for k, c in (v.get("changes") or {}).items())
        lines.append(f"{v['who']} {v['vote']}d via {v['channel']} at {voting.iso(v['at'])}"
                     + (f", edited {edits}" if edits else "") + (" (values edited since; no longer counts)"
                                                                  if v["stale"] else ""))
    return lines


async def refresh_slack(service: Approvals, gate: dict[str, Any]) -> int:
    """Re-draw every Slack request message of ``gate`` (buttons while pending, the outcome after)."""
    slack_notifier = None
    updated = 0
    votes = service.tally(gate)
    for message in service.messages(gate["id"]):
        if message["kind"] != "slack" or not message["ts"] or message["purpose"] not in ("request", "escalation"):
            continue
        if gate["state"] == "pending":
            blocks = slack.request_blocks(gate, service.allowed(gate), votes)
        else:
            blocks = slack.decided_blocks(gate, votes)
        try:
            slack_notifier = slack_notifier or notifier("slack")
            if not isinstance(slack_notifier, Updatable):
                return updated
            await slack_notifier.update(Receipt(channel=message["channel_id"], ts=message["ts"]),
                                        Notice(subject=gate["title"], text=slack.fallback_text(gate), blocks=blocks))
            updated += 1
        except Exception as exc:
            log.warning("approval %s: could not update Slack message %s: %s", gate["id"], message["ts"], exc)
    return updated
