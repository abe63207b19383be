"""``hub prompts``: list, show, diff, label, promote, sync, history. Thin over the registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from hub.prompts.cli_errors import user_errors


@contextmanager
def _registry(directory: Path | None) -> Iterator[Any]:
    from hub.core.host import COMMANDS, lookup
    from hub.prompts.registry import PromptRegistry
    from hub.store.store import Store

    config = lookup(COMMANDS).settings()
    store = Store.from_settings(config)
    try:
        yield PromptRegistry(store.engine, directory or config.prompts_dir, protected=config.protected())
    finally:
        store.close()


def os_user() -> str:
    """Who runs the command, for the label history: ``user:<login>``."""
    import getpass

    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return "user:unknown"


def _move(reg: Any, name: str, version: str, force: bool, reason: str | None, eval_run: str | None) -> Any:
    """The audit of a label move from the command line (an ``--eval-run`` is checked first)."""
    from hub.prompts.registry import Move

    if eval_run:  # the evals feature checks the run (it sits above the registry: looked up, not imported)
        from hub.core.host import EVAL_GATE, lookup

        eval_run = lookup(EVAL_GATE).verify(reg.engine, name, reg.version_of(name, version), eval_run)
    return Move(actor=os_user(), reason=reason, eval_run=eval_run, force=force)


force_option = click.option("--force", is_flag=True, help="Move a protected label without an eval (needs --reason; audited).")
reason_option = click.option("--reason", help="Why the label moves (kept in the label history).")
eval_run_option = click.option("--eval-run", help="A passing eval run of this version that justifies the move.")


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M") if ts else "-"


dir_option = click.option(
    "--dir", "directory", type=click.Path(path_type=Path), default=None,
    help="Folder of prompt files (default: HUB_PROMPTS_DIR or ./prompts).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def prompts() -> None:
    """Versioned prompts: files in prompts/ become numbered versions; labels pick which one runs."""


@prompts.command("sync")
@dir_option
@click.option("-m", "--message", default=None, help="Stored on every new version.")
@user_errors
def sync(directory: Path | None, message: str | None) -> None:
    """Store every changed prompt file as a new version."""
    with _registry(directory) as reg:
        for item in reg.sync(message=message):
            mark = click.style("new", fg="green") if item.created else "unchanged"
            click.echo(f"{item.name}: version {item.version} ({mark})")


@prompts.command("list")
@dir_option
@json_option
@user_errors
def list_(directory: Path | None, as_json: bool) -> None:
    """Prompts with their newest version and labels."""
    with _registry(directory) as reg:
        reg.sync()
        rows = reg.names()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        labels = " ".join(f"{k}=v{v}" for k, v in row["labels"].items())
        click.echo(f"{row['name']:<28} v{row['latest']:<4} {labels:<32} {row['description'] or ''}".rstrip())


@prompts.command("show")
@click.argument("name")
@click.argument("version", required=False)
@dir_option
@json_option
@user_errors
def show(name: str, version: str | None, directory: Path | None, as_json: bool) -> None:
    """A prompt's versions, or one version's source (VERSION: a number, a label or latest)."""
    with _registry(directory) as reg:
        reg.sync(name)
        if version is None:
            rows = reg.versions(name)
            if as_json:
                click.echo(json.dumps(rows, indent=2))
                return
            for row in rows:
                labels = ", ".join(row["labels"])
                note = f"  {row['message']}" if row["message"] else ""
                click.echo(f"v{row['version']:<4} {row['hash'][:12]}  {_when(row['created_at'])}  {labels}{note}")
            return
        row = reg.get(name, reg.version_of(name, version))
    if as_json:
        click.echo(json.dumps({k: row[k] for k in ("name", "version", "content_hash", "spec", "message")}, indent=2))
        return
    click.secho(f"# {name} v{row['version']}  {row['content_hash'][:12]}", fg="cyan")
    click.echo(row["source"].rstrip())


@prompts.command("diff")
@click.argument("name")
@click.argument("a")
@click.argument("b", default="latest")
@dir_option
@user_errors
def diff(name: str, a: str, b: str, directory: Path | None) -> None:
    """Differences between two versions (numbers or labels; B defaults to latest)."""
    with _registry(directory) as reg:
        reg.sync(name)
        text = reg.diff(name, a, b)
    if not text:
        click.echo("no differences")
    for line in text.splitlines():
        color = "green" if line.startswith("+") else "red" if line.startswith("-") else None
        click.secho(line, fg=color)


@prompts.command("label")
@click.argument("name")
@click.argument("version")
@click.argument("label")
@force_option
@reason_option
@eval_run_option
@dir_option
@user_errors
def label(
    name: str, version: str, label: str, force: bool, reason: str | None, eval_run: str | None, directory: Path | None,
) -> None:
    """Point LABEL at VERSION (a number, another label or latest).

    A protected label (HUB_PROTECTED_LABELS, default production) moves only with --eval-run RUN
    (a passing eval of that version) or --force --reason TEXT."""
    with _registry(directory) as reg:
        previous = reg.set_label(name, label, version, _move(reg, name, version, force, reason, eval_run))
        now = reg.labels(name)[label]
    was = f" (was v{previous})" if previous is not None else ""
    click.echo(f"{name}@{label} -> v{now}{was}")


@prompts.command("promote")
@click.argument("name")
@click.argument("version", required=False)
@click.option("--from", "source", default="staging", show_default=True, help="Version or label to promote.")
@click.option("--to", "--label", "target", default="production", show_default=True, help="Label that moves.")
@click.option("--require-eval", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Promote only if the version passes this eval file against the version the label names now; "
                   "the run is recorded with the move.")
@force_option
@reason_option
@eval_run_option
@dir_option
@user_errors
def promote(
    name: str, version: str | None, source: str, target: str, require_eval: Path | None, force: bool,
    reason: str | None, eval_run: str | None, directory: Path | None,
) -> None:
    """Move a label (production) onto VERSION, or the version another label (staging) names.

    A protected label (HUB_PROTECTED_LABELS, default production) needs --require-eval FILE,
    --eval-run RUN or --force --reason TEXT."""
    if require_eval is not None:
        from hub.core.host import EVAL_GATE, lookup

        done = lookup(EVAL_GATE).run_and_promote(name, version or source, target, require_eval, directory, os_user())
        against = f" against v{done['compared_with']}" if done.get("compared_with") else ""
        click.echo(f"{name}@{target} -> v{done['version']} (eval run {done['run_id']} passed{against})")
        return
    with _registry(directory) as reg:
        moved, previous = reg.promote(name, version or source, target, _move(reg, name, version or source, force, reason, eval_run))
    was = f" (was v{previous})" if previous is not None else ""
    click.echo(f"{name}@{target} -> v{moved}{was}")


@prompts.command("history")
@click.argument("name")
@dir_option
@json_option
@user_errors
def history(name: str, directory: Path | None, as_json: bool) -> None:
    """Every move of every label of a prompt: when, who, why, and the eval run behind it."""
    with _registry(directory) as reg:
        reg.versions(name)
        moves = reg.history(name)
    if as_json:
        click.echo(json.dumps(moves, indent=2))
        return
    for move in moves:
        was = f" (was v{move['previous']})" if move["previous"] is not None else ""
        who = move.get("actor") or "-"
        evidence = f" eval {move['eval_run']}" if move.get("eval_run") else ""
        forced = click.style(" FORCED", fg="red", bold=True) if move.get("forced") else ""
        why = f"  {move['reason']}" if move.get("reason") else ""
        click.echo(f"{_when(move['moved_at'])}  {move['label']} -> v{move['version']}{was}  by {who}{forced}{evidence}{why}")
