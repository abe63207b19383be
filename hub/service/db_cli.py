"""``hub db``: the database schema, its version histories (the store's and each plugin's) and
upgrading it (Alembic; :mod:`hub.store.migrations`)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from hub.cli import user_errors

STATES = {"current": "at head", "behind": "behind: run `hub db upgrade`", "missing": "not created: run `hub db upgrade`",
          "newer": "at a revision this hub does not know (a newer hub or plugin upgraded it)"}


def _store() -> Any:
    from hub.cli import settings
    from hub.store.store import Store

    return Store.open(settings().resolved_database_url(), migrate=False)


@click.group()
def db() -> None:
    """The database schema: where it stands, its histories, upgrading it.

    The schema is made of version histories: the store's own (``core``) and one per plugin that
    ships migrations, each kept in its own table ``alembic_version_<history>``. ``hub serve``,
    ``hub worker`` and ``hub run`` upgrade the database when they start; these commands do it, or
    show it, on their own (``HUB_DATABASE_URL``, else SQLite under ``HUB_HOME``).
    """


@db.command()
@user_errors
def upgrade() -> None:
    """Bring every history to its head; a database of the hand-written migrations (hub 0.1: schema_version 1-6) is adopted.

    Also creates the tables of plugins that declare tables without migrations. Safe to run
    while servers and workers run, and from several places at once (one migrates, the others wait).
    """
    from hub.store.migrations import SchemaError

    store = _store()
    try:
        done = store.migrate(force=True)
    except SchemaError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    finally:
        store.close()
    for line in done:
        click.echo(line)
    if not done:
        click.echo("the database is at every head; nothing to do")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print the histories as JSON.")
@click.option("--check", is_flag=True, help="Exit 1 unless every history is at its head.")
@user_errors
def current(as_json: bool, check: bool) -> None:
    """Where the database stands in each history, against the heads of this hub's scripts."""
    from hub.store.migrations import describe

    store = _store()
    try:
        rows = describe(store.engine)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            at = ", ".join(row["database"]) if row["database"] else "-"
            click.echo(f"{row['history']:<12} {at:<16} {STATES[row['state']]}  ({row['plugin']}: {row['location']})")
    if check and any(row["state"] != "current" for row in rows):
        sys.exit(1)


@db.command()
@click.argument("names", nargs=-1, metavar="[HISTORY]...")
@user_errors
def history(names: tuple[str, ...]) -> None:
    """The revisions of each history (or of those named), newest first."""
    from hub.store.branches import plugin_branches
    from hub.store.migrations import history as revisions

    branches = plugin_branches()
    unknown = sorted(set(names) - {b.name for b in branches})
    if unknown:
        raise click.BadParameter(f"no history {unknown[0]!r}; there are: {', '.join(b.name for b in branches)}",
                                 param_hint="HISTORY")
    for branch in branches:
        if names and branch.name not in names:
            continue
        click.echo(f"{branch.name} ({branch.plugin}: {branch.location})")
        for row in revisions(branch):
            click.echo(f"  {row['revision']:<16} <- {row['down_revision'] or '(base)':<16} {row['doc']}")
