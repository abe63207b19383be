"""The approval page: small server-rendered HTML, no JavaScript.

A GET only shows the request (mail scanners open links); the decision is the form's POST.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from hub.approvals.forms import FormField, defaults
from hub.approvals.identities import display
from hub.approvals.service import iso

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


def form_page(
    gate: dict[str, Any], identity: str, action: str, *, values: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None, notice: str | None = None, comment: str = "",
) -> str:
    """The request with its form and the Approve / Reject buttons (posting to ``action``)."""
    form = gate["form"] or {}
    current = values if values is not None else defaults(form)
    problems = problems or {}
    fields = "".join(_field(name, spec, current.get(name), problems.get(name)) for name, spec in form.items())
    note = f"<p class=error>{escape(notice)}</p>" if notice else ""
    body = (
        _header(gate) + note
        + f"<form method=post action='{escape(action)}'>{fields}"
        + "<label for=comment>Comment (the reason, when rejecting)</label>"
        + f"<textarea name=comment id=comment>{escape(comment)}</textarea>"
        + "<div class=buttons><button class=approve name=decision value=approve>Approve</button>"
        + "<button class=reject name=decision value=reject formnovalidate>Reject</button></div></form>"
        + f"<p class=meta>You are deciding as {escape(display(identity))}.</p>"
    )
    return _page(gate["title"], body)


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
    listed = "".join(
        f"<li>{escape(display(v['voter']))}: {escape(v['vote'])} via {escape(v['channel'])}"
        f"{' — ' + escape(v['comment']) if v.get('comment') else ''}</li>"
        for v in votes
    )
    comment = f"<p><b>Comment:</b> {escape(gate['comment'])}</p>" if gate.get("comment") else ""
    body = (_header(gate) + f"<p class='outcome {escape(state)}'>{text}</p>" + comment
            + (f"<p class=meta>Votes:</p><ul>{listed}</ul>" if listed else ""))
    return _page(gate["title"], body)


def error_page(title: str, message: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>")
