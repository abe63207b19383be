"""The approval page: small server-rendered HTML, no JavaScript.

A GET only shows the request (mail scanners open links); the decision is the form's POST.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from hub.approvals.forms import FormField
from hub.approvals.identities import display
from hub.approvals.voting import approvals, current_values, iso

CHANGED = "The values were edited since you approved; your approval no longer counts. Review the current values and decide again."

STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1c1e21}
main{max-width:40rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;border-radius:8px;
box-shadow:0 1px 3px rgba(0,0,0,.1)}
h1{font-size:1.3rem;margin:.2rem 0 1rem}.meta{color:#5f6b7a;font-size:.9rem}
.message{white-space:pre-wrap;background:#f6f7f9;padding:1rem;border-radius:6px}
label{display:block;font-weight:600;margin:1rem 0 .3rem}.help{color:#5f6b7a;font-size:.85rem}
input[type=text],input[type=number],textarea,select{width:100%;box-sizing:border-box;padding:.5rem;
font:inherit;border:1px solid #c9ced6;border-radius:4px}textarea{min-height:6rem}
.error{color:#b42318;font-size:.9rem}.buttons{margin-top:1.5rem;display:flex;gap:.8rem}
button{font:inherit;padding:.6rem 1.4rem;border:0;border-radius:4px;cursor:pointer;color:#fff}
.approve{background:#1a7f37}.reject{background:#b42318}
.outcome{font-size:1.1rem;padding:1rem;border-radius:6px;background:#eef6ee}
.outcome.rejected,.outcome.cancelled,.outcome.timed_out{background:#fdeceb}
.votes li.stale{color:#5f6b7a}.votes .changes{font-size:.9rem;color:#5f6b7a}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<meta name=robots content=noindex><meta name=referrer content=no-referrer>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def _header(gate: dict[str, Any]) -> str:
    need = gate["required"]
    deadline = f" · decide before {escape(iso(gate['deadline']) or '')}" if gate.get("deadline") else ""
    return (
        f"<p class=meta>{escape(gate['namespace'])}.{escape(gate['flow_id'])} · {escape(gate['task_id'])}"
        f" · needs {need} approval{'s' if need > 1 else ''}{deadline}</p>"
        f"<h1>{escape(gate['title'])}</h1><div class=message>{escape(gate['message'])}</div>"
    )


def _field(name: str, raw: dict[str, Any], value: Any, problem: str | None) -> str:
    spec = FormField.model_validate(raw)
    label = escape(spec.label or name)
    key = f"field.{name}"
    attr = f"name='{escape(key)}' id='{escape(key)}'"
    if spec.required:
        attr += " required"
    if spec.type == "text":
        control = f"<textarea {attr}>{escape('' if value is None else str(value))}</textarea>"
    elif spec.type == "json":
        shown = "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)
        control = f"<textarea {attr}>{escape(shown)}</textarea>"
    elif spec.type == "bool":
        checked = " checked" if value is True else ""
        control = f"<input type=checkbox {attr} value=true{checked}>"
    elif spec.type == "enum":
        options = "".join(
            f"<option{' selected' if o == value else ''}>{escape(o)}</option>" for o in spec.options or []
        )
        control = f"<select {attr}>{options}</select>"
    elif spec.type == "number":
        bounds = "".join(f" {k}='{v:g}'" for k, v in (("min", spec.min), ("max", spec.max)) if v is not None)
        control = f"<input type=number step=any {attr}{bounds} value='{escape('' if value is None else str(value))}'>"
    else:
        limit = f" maxlength={spec.max_length}" if spec.max_length else ""
        control = f"<input type=text {attr}{limit} value='{escape('' if value is None else str(value))}'>"
    help_ = f"<div class=help>{escape(spec.help)}</div>" if spec.help else ""
    error = f"<div class=error>{escape(problem)}</div>" if problem else ""
    return f"<label for='{escape(key)}'>{label}</label>{control}{help_}{error}"


def shown_revision(fields: dict[str, str]) -> int | None:
    """The revision of the values a submitted page showed (None when the page did not say)."""
    raw = fields.get("revision", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None


def votes_html(gate: dict[str, Any], votes: list[dict[str, Any]]) -> str:
    """The votes so far: who, decision, channel, when, what they edited, and whether it still counts."""
    if not votes:
        return "<p class=meta>No votes yet.</p>"
    items = []
    for v in votes:
        edits = "; ".join(f"{escape(k)}: {escape(_text(c.get('from')))} → {escape(_text(c.get('to')))}"
                          for k, c in (v.get("changes") or {}).items())
        stale = " (values edited since; no longer counts)" if v.get("stale") else ""
        items.append(
            f"<li class='{'stale' if v.get('stale') else ''}'>{escape(v['who'])}: {escape(v['vote'])} via "
            f"{escape(v['channel'])} at {escape(iso(v['at']) or '')}{stale}"
            + (f" — {escape(v['comment'])}" if v.get("comment") else "")
            + (f"<div class=changes>edited {edits}</div>" if edits else "") + "</li>"
        )
    need = gate["required"]
    return (f"<p class=meta>Votes ({approvals(gate, votes)} of {need} approval{'s' if need > 1 else ''} on the "
            f"current values):</p><ul class=votes>{''.join(items)}</ul>")


def _text(value: Any) -> str:
    return "—" if value is None or value == "" else value if isinstance(value, str) else json.dumps(value)


def form_page(
    gate: dict[str, Any], identity: str, action: str, *, values: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None, notice: str | None = None, comment: str = "",
    votes: list[dict[str, Any]] | None = None,
) -> str:
    """The request with its form holding the current values (the latest edit), the votes so far
    and the Approve / Reject buttons (posting to ``action``)."""
    form = gate["form"] or {}
    current = values if values is not None else current_values(gate)
    problems = problems or {}
    fields = "".join(_field(name, spec, current.get(name), problems.get(name)) for name, spec in form.items())
    note = f"<p class=error>{escape(notice)}</p>" if notice else ""
    edited = " (edited by an approver; approving approves these values)" if gate.get("revision") else ""
    body = (
        _header(gate) + note
        + (f"<p class=meta>Current values{edited}:</p>" if form else "")
        + f"<form method=post action='{escape(action)}'>{fields}"
        + f"<input type=hidden name=revision value='{int(gate.get('revision') or 0)}'>"
        + "<label for=comment>Comment (the reason, when rejecting)</label>"
        + f"<textarea name=comment id=comment>{escape(comment)}</textarea>"
        + "<div class=buttons><button class=approve name=decision value=approve>Approve</button>"
        + "<button class=reject name=decision value=reject formnovalidate>Reject</button></div></form>"
        + f"<p class=meta>You are deciding as {escape(display(identity))}.</p>"
        + votes_html(gate, votes or [])
    )
    return _page(gate["title"], body)


def _values_html(gate: dict[str, Any]) -> str:
    form = gate["form"] or {}
    if not form:
        return ""
    values = current_values(gate)
    rows = "".join(f"<li><b>{escape(spec.get('label') or name)}</b>: {escape(_text(values.get(name)))}</li>"
                   for name, spec in form.items())
    which = "Values decided" if gate["state"] != "pending" else "Current values"
    return f"<p class=meta>{which}:</p><ul class=values>{rows}</ul>"


def outcome_page(gate: dict[str, Any], votes: list[dict[str, Any]], headline: str | None = None) -> str:
    """The request once decided (or while it waits for more approvals)."""
    by = gate.get("decided_by") or {}
    state = gate["state"]
    if state == "pending":
        text = headline or "Your vote is counted; the request waits for more approvals."
    elif state == "cancelled":
        text = "This request was cancelled: its execution ended before a decision."
    elif by.get("channel") == "timeout":
        text = f"{state.replace('_', ' ').capitalize()}: nobody decided in time."
    else:
        text = (f"{state.replace('_', ' ').capitalize()} by {escape(str(by.get('who')))} via "
                f"{escape(str(by.get('channel')))} at {escape(str(by.get('at')))}.")
    if headline and state != "pending":
        text = f"{escape(headline)} {text}"
    comment = f"<p><b>Comment:</b> {escape(gate['comment'])}</p>" if gate.get("comment") else ""
    body = (_header(gate) + f"<p class='outcome {escape(state)}'>{text}</p>" + comment + _values_html(gate)
            + (votes_html(gate, votes) if votes else ""))
    return _page(gate["title"], body)


def error_page(title: str, message: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>")
