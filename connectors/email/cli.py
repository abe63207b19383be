"""``hub email``: read the outbox and the delivery records from the command line.

Mount in the hub CLI with ``main.add_command(connectors.email.cli.email)``.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import click


def _store() -> contextlib.AbstractContextManager[Any]:
    from hub.core.host import STORE, lookup

    return lookup(STORE)()


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


@click.group()
def email() -> None:
    """Email messages: the outbox and what happened to sent mail."""


@email.command("list")
@click.option("--status", help="outbox, sending, sent or failed.")
@click.option("--backend", help="outbox, smtp or sendgrid.")
@click.option("--execution", "execution_id", help="Only messages of this execution.")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(status: str | None, backend: str | None, execution_id: str | None, limit: int, as_json: bool) -> None:
    """List messages, newest first (``--status outbox`` for the outbox)."""
    from connectors.email.outbox import list_messages

    with _store() as store:
        rows = list_messages(store, status=status, backend=backend, execution_id=execution_id, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("no messages")
        return
    for row in rows:
        to = ", ".join(row["recipients"][:3]) + (" ..." if len(row["recipients"]) > 3 else "")
        click.echo(f"{row['id'][:12]}  {_when(row['created_at'])}  {row['status']:<8} {row['backend']:<9} {to}  {row['subject']}")


@email.command("outbox")
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def outbox_command(ctx: click.Context, limit: int) -> None:
    """List messages stored in the outbox (no backend configured)."""
    ctx.invoke(list_command, status="outbox", backend=None, execution_id=None, limit=limit, as_json=False)


@email.command("show")
@click.argument("message_id")
@click.option("--json", "as_json", is_flag=True, help="Print the whole record as JSON.")
def show_command(message_id: str, as_json: bool) -> None:
    """Show one message (id or unambiguous prefix): headers, body and delivery events."""
    from connectors.email.outbox import get_message
    from hub.core.errors import NotFound

    try:
        with _store() as store:
            row = get_message(store, message_id)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(row, indent=2, default=str))
        return
    msg = row["message"]
    click.echo(f"id:        {row['id']}  ({row['status']} via {row['backend']}, attempts {row['attempts']})")
    click.echo(f"execution: {row['execution_id'] or '-'}  step {row['task_path'] or '-'}")
    for label, key in (("from", "from"), ("to", "to"), ("cc", "cc"), ("bcc", "bcc"), ("reply-to", "reply_to")):
        value = msg.get(key)
        if value:
            click.echo(f"{label + ':':<10} {', '.join(value) if isinstance(value, list) else value}")
    click.echo(f"subject:   {msg['subject']}")
    for att in msg.get("attachments", []):
        click.echo(f"attached:  {att['filename']} ({att['content_type']}, {att['size']} bytes)")
    for email_address, state in (row.get("delivery") or {}).items():
        click.echo(f"delivery:  {email_address}: {state.get('event')} at {_when(state.get('timestamp'))}")
    if row.get("error"):
        click.echo(f"error:     {row['error'].get('message')}")
    click.echo("")
    click.echo(msg.get("text") or msg.get("html") or "")
