"""The console's templates and the filters they use (times, durations, JSON, highlighted YAML, diffs)."""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

HERE = Path(__file__).parent
STATIC = HERE / "static"

# what a console page may load: only this server (inline style attributes place the charts' bars)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; worker-src 'self' blob:; font-src 'self' data:; frame-ancestors 'none'; "
       "base-uri 'self'; form-action 'self'")

STATE_CLASS = {
    "SUCCESS": "ok", "WARNING": "warn", "FAILED": "bad", "KILLED": "bad", "CANCELLED": "muted",
    "RUNNING": "run", "QUEUED": "wait", "CREATED": "wait", "PAUSED": "pause", "KILLING": "bad", "SKIPPED": "muted",
    "RETRYING": "warn", "pending": "pause", "approved": "ok", "rejected": "bad", "timed_out": "bad",
    "cancelled": "muted", "OK": "ok", "ERROR": "bad", "UNSET": "muted",
}


def when(ts: float | None) -> str:
    """Epoch seconds as ``2026-12-03 10:21:07`` (UTC)."""
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(float(ts), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(float(ts), dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def duration(seconds: float | None) -> str:
    """A short duration: ``420 ms``, ``3.2 s``, ``4 min 12 s``, ``2 h 5 min``."""
    if seconds is None:
        return "—"
    s = float(seconds)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def pretty(value: Any) -> str:
    """A value as indented JSON (text stays text)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def money(value: float | None) -> str:
    """USD: four decimals, six below a cent (a model call often costs fractions of one)."""
    if value is None:
        return "—"
    amount = float(value)
    return f"${amount:.6f}" if 0 < amount < 0.01 else f"${amount:.4f}"


def state_class(state: str | None) -> str:
    return STATE_CLASS.get(str(state), "muted")


@lru_cache(maxsize=256)
def _highlight(text: str, lexer_name: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    formatter = HtmlFormatter(nowrap=True)
    return highlight(text, get_lexer_by_name(lexer_name), formatter)


def highlighted(text: str | None, language: str = "yaml") -> Markup:
    """Source with syntax colours (Pygments classes, styled in console.css), one ``<span
    class=line>`` per line so lines can be numbered and pointed at."""
    body = _highlight(text or "", language)
    lines = body.rstrip("\n").split("\n")
    return Markup("".join(f'<span class="line" id="L{n}">{line}\n</span>' for n, line in enumerate(lines, 1)))


def diff_html(diff: str) -> Markup:
    """A unified diff with added, removed and hunk lines marked."""
    out = []
    for line in diff.splitlines():
        kind = "hunk" if line.startswith("@@") else "add" if line.startswith("+") else "del" if line.startswith("-") else ""
        if line.startswith(("+++", "---")):
            kind = "file"
        out.append(f'<span class="d {kind}">{escape(line)}\n</span>')
    return Markup("".join(out) or '<span class="d">(no changes)</span>')


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(
        when=when, iso=iso, duration=duration, pretty=pretty, money=money, state_class=state_class,
        highlighted=highlighted, diff_html=diff_html, tojson_compact=lambda v: json.dumps(v, default=str),
    )
    return env


def render(request: Request, viewer: Any, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A whole page (or a fragment template) as an HTML response."""
    who = viewer if viewer is not None else getattr(request.state, "console_viewer", None)
    html = environment().get_template(template).render(
        request=request, viewer=who, path=request.url.path, **context
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store",
                                                           "Content-Security-Policy": CSP})
