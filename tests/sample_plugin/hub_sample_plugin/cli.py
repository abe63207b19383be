"""``hub sample``: prints the task kinds this hub knows that start with a prefix."""

from __future__ import annotations

import click


@click.command()
@click.option("--prefix", default="sample.", show_default=True)
def sample(prefix: str) -> None:
    """Task kinds whose type starts with PREFIX (the sample plugin's own command)."""
    from hub.tasks.registry import default_registry

    for name in default_registry().types():
        if name.startswith(prefix):
            click.echo(name)
