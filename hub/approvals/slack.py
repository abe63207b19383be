"""Slack's side of approvals: the Block Kit message, the request signature, the interaction payload.

Slack signs every interactivity request: ``X-Slack-Signature: v0=<hex>`` is HMAC-SHA256 with the
app's signing secret over ``v0:<X-Slack-Request-Timestamp>:<raw body>``. A request older (or
newer) than five minutes is refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from hub.approvals.voting import approvals, current_values

APPROVE = "hub_approve"
REJECT = "hub_reject"
OPEN_FORM = "hub_form"
ACTIONS = (APPROVE, REJECT, OPEN_FORM)
MAX_TEXT = 2900  # a section's text may hold 3000 characters


class BadRequest(Exception):
    """A Slack request that is not authentic or not understood; ``reason`` goes to the audit log."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, headers: Any, body: bytes, now: float, max_age: float = 300.0) -> None:
    """Raise :class:`BadRequest` unless the request is signed by Slack within ``max_age`` seconds."""
    timestamp = headers.get("x-slack-request-timestamp") or ""
    given = headers.get("x-slack-signature") or ""
    try:
        sent = int(timestamp)
    except ValueError:
        raise BadRequest("bad_signature", "missing or malformed X-Slack-Request-Timestamp") from None
    if abs(now - sent) > max_age:
        raise BadRequest("stale", f"the request timestamp is more than {max_age:g}s away from now")
    if not hmac.compare_digest(given.encode(), signature(secret, timestamp, body).encode()):
        raise BadRequest("bad_signature", "the X-Slack-Signature does not match")


@dataclass
class Action:
    """One button press."""

    action_id: str
    gate_id: str
    user_id: str
    user_name: str | None
    channel_id: str | None
    message_ts: str | None
    response_url: str | None
    revision: int | None = None
    """The revision of the values the pressed message showed (None: a message from before revisions)."""


def parse(body: bytes) -> Action:
    """The button press in an interactivity request (``payload=<json>``, form-encoded)."""
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
    except (KeyError, IndexError, ValueError, UnicodeDecodeError):
        raise BadRequest("bad_request", "the body has no JSON 'payload' field") from None
    if payload.get("type") != "block_actions":
        raise BadRequest("unsupported", f"interaction type {payload.get('type')!r} is not handled")
    actions = [a for a in payload.get("actions") or [] if a.get("action_id") in ACTIONS]
    if not actions:
        raise BadRequest("unsupported", "no approval button in this interaction")
    user = payload.get("user") or {}
    container = payload.get("container") or {}
    channel = payload.get("channel") or {}
    return Action(
        action_id=actions[0]["action_id"],
        gate_id=str(actions[0].get("value") or ""),
        user_id=str(user.get("id") or ""),
        user_name=user.get("username") or user.get("name"),
        channel_id=container.get("channel_id") or channel.get("id"),
        message_ts=container.get("message_ts"),
        response_url=payload.get("response_url"),
        revision=_revision(str(actions[0].get("block_id") or "")),
    )


def _revision(block_id: str) -> int | None:
    """``hub_approval_<gate>.r<revision>`` → the revision."""
    _, sep, raw = block_id.rpartition(".r")
    return int(raw) if sep and raw.isascii() and raw.isdigit() and len(raw) < 10 else None


# -- Block Kit -------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: &, < and > only."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mention(identity: str) -> str:
    kind, _, value = identity.partition(":")
    return f"<@{value}>" if kind == "slack" else escape(value if kind in ("email", "user", "person") else identity)


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    stamp = int(ts)
    fallback = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{fallback}>"


def _head(gate: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(gate["title"], 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(escape(gate["message"]) or " ")}},
    ]
    form = gate.get("form") or {}
    values = current_values(gate)
    if form:
        fields = [
            {"type": "mrkdwn", "text": _clip(f"*{escape(spec.get('label') or name)}*\n{escape(_show(values.get(name)))}", 1900)}
            for name, spec in list(form.items())[:10]
        ]
        blocks.append({"type": "section", "fields": fields})
    return blocks


def _show(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def votes_block(gate: dict[str, Any], votes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The votes so far (see :func:`hub.approvals.voting.tally`) as a context block; none without votes."""
    if not votes:
        return []
    lines = [f"*Votes:* {approvals(gate, votes)} of {gate['required']} approval{'s' if gate['required'] > 1 else ''}"
             + (" on the current values" if gate.get("revision") else "")]
    for v in votes[:20]:
        mark = ":white_check_mark:" if v["vote"] == "approve" else ":x:"
        line = f"{mark} {mention(v['identity'])} {v['vote']}d via {v['channel']} · {when(v['at'])}"
        if v.get("changes"):
            line += " · edited " + "; ".join(
                f"{escape(k)}: {escape(_show(c.get('from')))} → {escape(_show(c.get('to')))}"
                for k, c in v["changes"].items())
        if v.get("stale"):
            line += " · _values edited since: no longer counts_"
        if v.get("comment"):
            line += f" · “{escape(v['comment'])}”"
        lines.append(line)
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": _clip("\n".join(lines))}]}]


def request_blocks(
    gate: dict[str, Any], approvers: list[str], votes: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The request: message, current form values, who may decide, the votes so far, Approve /
    Reject (and Edit) buttons. The buttons' block names the revision of the values shown."""
    blocks = _head(gate)
    need = gate["required"]
    who = ", ".join(mention(a) for a in approvers[:20])
    context = f"{gate['namespace']}.{gate['flow_id']} · {gate['task_id']} · needs {need} approval{'s' if need > 1 else ''}"
    if who:
        context += f" from {who}"
    if gate.get("deadline"):
        context += f" · until {when(gate['deadline'])}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(context)}]})
    blocks += votes_block(gate, votes or [])
    buttons: list[dict[str, Any]] = [
        {"type": "button", "action_id": APPROVE, "value": gate["id"], "style": "primary",
         "text": {"type": "plain_text", "text": "Approve"}},
        {"type": "button", "action_id": REJECT, "value": gate["id"], "style": "danger",
         "text": {"type": "plain_text", "text": "Reject"},
         "confirm": {"title": {"type": "plain_text", "text": "Reject this request?"},
                     "text": {"type": "plain_text", "text": "The flow continues with the rejection."},
                     "confirm": {"type": "plain_text", "text": "Reject"},
                     "deny": {"type": "plain_text", "text": "Cancel"}}},
    ]
    if gate.get("form"):
        buttons.append({"type": "button", "action_id": OPEN_FORM, "value": gate["id"],
                        "text": {"type": "plain_text", "text": "Edit and decide…"}})
    block_id = f"hub_approval_{gate['id']}.r{int(gate.get('revision') or 0)}"
    blocks.append({"type": "actions", "block_id": block_id, "elements": buttons})
    return blocks


OUTCOME = {
    "approved": ":white_check_mark: *Approved*",
    "rejected": ":x: *Rejected*",
    "timed_out": ":hourglass: *Timed out*",
    "cancelled": ":no_entry_sign: *Cancelled*",
}


def outcome_text(gate: dict[str, Any]) -> str:
    by = gate.get("decided_by") or {}
    text = OUTCOME.get(gate["state"], gate["state"])
    if gate["state"] == "cancelled":
        return f"{text}: the execution ended before a decision · {when(gate.get('decided_at'))}"
    if by.get("channel") == "timeout":
        return f"{text} when the time ran out · {when(gate.get('decided_at'))}"
    if by:
        text += f" by {mention(by.get('identity') or '')} via {by.get('channel')} · {when(gate.get('decided_at'))}"
    if gate.get("comment"):
        text += f"\n> {escape(gate['comment'])}"
    return _clip(text)


def decided_blocks(gate: dict[str, Any], votes: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The request once decided: the values decided, the votes, no buttons, who decided and when."""
    blocks = _head(gate) + votes_block(gate, votes or [])
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": outcome_text(gate)}})
    return blocks


def fallback_text(gate: dict[str, Any]) -> str:
    if gate["state"] == "pending":
        return _clip(f"Approval needed: {gate['title']}", 300)
    return _clip(f"{gate['title']}: {gate['state'].replace('_', ' ')}", 300)
