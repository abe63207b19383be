"""``hub plugins``: every loaded plugin, what it contributes and where it came from."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from hub.core.plugins import KINDS, default_plugins

LABELS = {"task_kind": "task", "trigger_type": "trigger", "router": "router", "command": "command",
          "tables": "tables", "migrations": "migrations", "sweeper": "sweeper", "service": "service", "lifespan": "lifespan",
          "middleware": "middleware", "notifier": "notifier", "settings": "settings"}


def describe() -> list[dict[str, Any]]:
    """The plugins as plain data (the JSON output and the API)."""
    out = []
    for info in default_plugins().infos():
        contributes: dict[str, list[str]] = {}
        for c in info.contributions:
            contributes.setdefault(c.kind, []).append(c.name)
        out.append({"name": info.name, "source": info.source, "error": info.error,
                    "contributes": {k: contributes[k] for k in KINDS if k in contributes}})
    return out


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the plugins as JSON.")
def plugins(as_json: bool) -> None:
    """List every loaded plugin (built-in and installed), what it contributes and where it came from.

    A plugin that failed to load is listed with its error; the others keep working. Exit 1 when
    any failed.
    """
    rows = describe()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            state = click.style("FAILED", fg="red", bold=True) if row["error"] else click.style("ok", fg="green")
            click.echo(f"{click.style(row['name'], bold=True)}  {state}  {row['source']}")
            if row["error"]:
                click.echo(f"    error: {row['error']}")
            for kind, names in row["contributes"].items():
                click.echo(f"    {LABELS[kind]}: {', '.join(names)}")
    if any(row["error"] for row in rows):
        sys.exit(1)
