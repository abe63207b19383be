"""How the ``hub`` command shows executions: live step lines while a flow runs, and one execution
with its steps, outputs and LLM calls (``hub executions show``). Text for people; ``--json`` is
for programs."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

STATE_COLORS = {
    "SUCCESS": "green",
    "WARNING": "yellow",
    "FAILED": "red",
    "KILLED": "red",
    "CANCELLED": "magenta",
    "RUNNING": "cyan",
    "PAUSED": "blue",
    "SKIPPED": "bright_black",
    "QUEUED": "bright_black",
}
OUTPUT_WIDTH = 400  # characters of a step's output shown in the text view
LLM_KINDS = frozenset({"llm.chat", "langchain.invoke"})
UP_AND_CLEAR = "\x1b[1A\r\x1b[K"  # back over the RUNNING line just printed


def styled_state(state: str) -> str:
    return click.style(state, fg=STATE_COLORS.get(state), bold=state in ("FAILED", "SUCCESS"))


def when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(start: float | None, end: float | None) -> str:
    if not start:
        return "-"
    from hub.flow.durations import format_duration

    return format_duration((end or time.time()) - start)


class Progress:
    """Live step lines on stderr while a flow runs.

    A step that does I/O (an LLM call, an HTTP request: every kind that is not pure) shows as
    RUNNING the moment it starts, so a wait of seconds is visible; on a terminal its line is then
    replaced by the outcome when nothing was printed in between."""

    def __init__(self, quiet: bool = False, tty: bool | None = None,
                 echo: Callable[[str], None] | None = None):
        from hub.engine.control import HANDLERS

        self.quiet = quiet
        self.containers = set(HANDLERS)  # their RUNNING line opens a block
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.echo = echo or (lambda line: click.echo(line, err=True))
        self._open: str | None = None  # the leaf whose RUNNING line is the last one printed
        self.streaming: str | None = None  # the step whose tokens are being printed

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        kind = event["event"]
        if kind == "step":
            self._end_tokens()
            self._step(event)
        elif kind == "log":
            self._end_tokens()
            self._print(click.style(f"    {event['level']}: ", fg="bright_black") + str(event["message"]))
        elif kind == "token":  # a streamed model answer, as it arrives
            self._open = None
            if self.streaming != event.get("path"):
                self._end_tokens()
                click.echo(click.style(f"    {event.get('path')}: ", fg="bright_black"), err=True, nl=False)
                self.streaming = event.get("path")
            click.echo(str(event.get("text", "")), err=True, nl=False)

    def _end_tokens(self) -> None:
        if self.streaming is not None:
            click.echo("", err=True)
            self.streaming = None
            self._open = None

    def _step(self, event: dict[str, Any]) -> None:
        state, path = event["state"], event["path"]
        took = f" {event['duration'] * 1000:.0f}ms" if event.get("duration") is not None else ""
        attempt = f" (attempt {event['attempt']})" if event.get("attempt", 1) > 1 else ""
        line = f"  {styled_state(state):<20} {path} [{event['type']}]{took}{attempt}"
        err = event.get("error")
        if err:
            line += click.style(f"  {err.get('type')}: {err.get('message')}", fg="red")
            if err.get("retry_in") is not None:
                line += click.style(f"  retrying in {err['retry_in']}s", fg="yellow")
        replace = self.tty and self._open == path and state != "RUNNING"
        self._print((UP_AND_CLEAR if replace else "") + line)
        self._open = path if state == "RUNNING" and event["type"] not in self.containers else None

    def _print(self, line: str) -> None:
        self._open = None
        self.echo(line)


def show_execution(engine: Any, execution: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    """``hub executions show`` as text: the execution, each step run with its output (and, for an
    LLM step, prompt version, model, tokens and cost), the error and the outputs."""
    calls = _llm_calls(engine, execution["id"]) if any(s["task_type"] in LLM_KINDS for s in steps) else {}
    click.echo(f"execution  {execution['id']}")
    click.echo(f"flow       {execution['namespace']}.{execution['flow_id']} (revision {execution['revision']})")
    click.echo(f"state      {styled_state(execution['state'])}")
    click.echo(f"started    {when(execution['started_at'])}   "
               f"duration {duration(execution['started_at'], execution['ended_at'])}")
    if execution.get("parent_id"):
        click.echo(f"parent     {execution['parent_id']}")
    click.echo(f"inputs     {json.dumps(execution['inputs'], default=str)}")
    click.echo("steps:")
    for step in steps:
        _show_step(engine, step, calls.get((step["path"], step["attempt"])))
    if calls:
        click.echo("llm        " + _llm_summary([c for group in calls.values() for c in group]))
    if execution.get("error"):
        err = execution["error"]
        click.secho(f"error      {err.get('type')}: {err.get('message')}", fg="red")
    if execution.get("outputs") is not None:
        click.echo("outputs    " + json.dumps(execution["outputs"], indent=2, default=str).replace("\n", "\n           "))


def _show_step(engine: Any, step: dict[str, Any], calls: list[dict[str, Any]] | None) -> None:
    attempt = f" #{step['attempt']}" if step["attempt"] > 1 else ""
    click.echo(f"  {styled_state(step['state']):<20} {step['path']:<28} {step['task_type']:<14} "
               f"{duration(step['started_at'], step['ended_at']):>8}{attempt}")
    if calls:
        click.echo(f"      llm     {_llm_summary(calls)}")
    if step.get("output") is not None or step.get("output_ref"):
        text = json.dumps(engine.store.load_output(step), default=str, ensure_ascii=False)
        if len(text) > OUTPUT_WIDTH:
            text = f"{text[:OUTPUT_WIDTH]}… ({len(text)} characters; --json shows all)"
        click.echo(f"      output  {text}")
    if step.get("error"):
        err = step["error"]
        click.secho(f"      {err.get('type')}: {err.get('message')}", fg="red")
        tb = (err.get("data") or {}).get("traceback") if isinstance(err.get("data"), dict) else None
        if tb:
            click.secho("      " + tb.rstrip().replace("\n", "\n      "), fg="bright_black")


def _llm_calls(engine: Any, execution_id: str) -> dict[tuple[str, int], list[dict[str, Any]]]:
    from hub.llm.records import CallLog

    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for call in CallLog(engine.store.engine).calls(execution_id):
        out.setdefault((call["path"], call["attempt"]), []).append(call)
    return out


def _llm_summary(calls: list[dict[str, Any]]) -> str:
    """``prompt triage v2 · model fast (openai/gpt-4o-mini) · 412 + 58 tokens · $0.000093 · 2 calls``"""
    first, last = calls[0], calls[-1]
    parts = []
    prompts = sorted({f"{c['prompt_name']} v{c['prompt_version']}" for c in calls if c.get("prompt_name")})
    if prompts:
        parts.append("prompt " + ", ".join(prompts))
    model = last.get("model") or first.get("model_requested") or "?"
    parts.append(f"model {model}" + (f" ({last['litellm_model']})" if last.get("litellm_model") else ""))
    tokens_in = sum(int(c.get("input_tokens") or 0) for c in calls)
    tokens_out = sum(int(c.get("output_tokens") or 0) for c in calls)
    parts.append(f"{tokens_in} + {tokens_out} tokens")
    parts.append(f"${sum(float(c.get('cost') or 0.0) for c in calls):.6f}")
    cached = sum(1 for c in calls if c.get("cached"))
    parts.append(f"{len(calls)} call{'s' if len(calls) != 1 else ''}" + (f" ({cached} cached)" if cached else ""))
    return " · ".join(parts)
