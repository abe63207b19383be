"""The ``hub`` command. Thin: it parses arguments, calls the engine, prints results."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any

import click

from hub.cli_output import Progress, show_execution
from hub.cli_output import duration as _dur
from hub.cli_output import styled_state as _state
from hub.cli_output import when as _when
from hub.core.host import COMMANDS, STORE, provide
from hub.errors import FlowError, HubError, InputError, InvalidSettings

EXIT_CODES = {"SUCCESS": 0, "WARNING": 0, "PAUSED": 3}


SETTINGS_KEY = "hub.settings"


def settings() -> Any:
    """The process's settings (:class:`hub.settings.HubSettings` with every section): read from
    the environment and checked when a command first asks, once per process. A problem stops the
    command with one line per setting (:class:`~hub.errors.InvalidSettings`, exit 2)."""
    from hub.settings import load_settings

    ctx = click.get_current_context(silent=True)
    meta = ctx.find_root().meta if ctx is not None else {}
    if SETTINGS_KEY not in meta:
        meta[SETTINGS_KEY] = load_settings()
    return meta[SETTINGS_KEY]


@contextlib.contextmanager
def open_store() -> Iterator[Any]:
    """The store of the process's settings, for a plugin's command (:class:`hub.core.host.StoreOpener`)."""
    from hub.store.store import Store

    store = Store.from_settings(settings())
    try:
        yield store
    finally:
        store.close()


provide(STORE, open_store)


_settings = settings


def warn_misspelled() -> None:
    """Warn (on stderr, once, not fatal) about each ``HUB_*`` variable that looks like a setting's
    name but is nobody's: a typo would otherwise be ignored without a word."""
    if not any(name.upper().startswith("HUB_") for name in os.environ):
        return
    from hub.settings import misspelled

    for line in misspelled(os.environ):
        click.secho(f"warning: {line}", fg="yellow", err=True)


def _engine(settings: Any = None, *, runs: bool = False) -> Any:
    """The engine of a command; one that ``runs`` executions traces them (unless HUB_TRACING=off):
    the hub's span store keeps them for ``hub trace``, and OTLP gets them when configured."""
    from hub.engine.runner import Engine
    from hub.store.store import Store

    settings = settings or _settings()
    store = Store.from_settings(settings)
    engine = Engine(store, settings)
    if runs and settings.log_format == "json":
        from hub.telemetry.jsonlog import configure_logging

        configure_logging("warning", "json", "run", engine)
    if runs:
        from hub.telemetry.setup import install, tracing_enabled

        if tracing_enabled():
            # an exporter or HUB_TRACING=on: a client span for every HTTP call too (importing the
            # httpx instrumentation is most of what tracing adds to a `hub run`)
            install(engine, http_spans=_tracing_asked())
    return engine


def _tracing_asked() -> bool:
    """Tracing asked for outright (HUB_TRACING=on, or an OTEL exporter configured), beyond the
    default span store."""
    if os.environ.get("HUB_TRACING", "").lower() in ("on", "true", "1", "yes"):
        return True
    return bool(os.environ.get("OTEL_TRACES_EXPORTER") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def _flush_traces() -> None:
    """Write the spans still buffered before the process ends (``hub trace`` reads them next)."""
    if "hub.telemetry.setup" in sys.modules:
        from hub.telemetry.setup import shutdown

        shutdown()


def _quiet_broken_pipe() -> None:
    """Exit 141 (128 + SIGPIPE, what a shell reports for a command a closed pipe stopped) without
    a word; stdout goes to /dev/null first so that the interpreter's last flush cannot fail again."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print user errors as messages with a non-zero exit, never as tracebacks."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FlowError as exc:
            click.secho(str(exc), fg="red", err=True)
            sys.exit(1)
        except InputError as exc:
            click.secho("error: " + str(exc), fg="red", err=True)
            sys.exit(2)
        except InvalidSettings as exc:
            for problem in exc.problems:
                click.secho(f"error: {problem}", fg="red", err=True)
            sys.exit(2)
        except HubError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)
        except (click.ClickException, click.exceptions.Exit, SystemExit, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            # the reader went away (`hub executions list | head -1`): stop quietly, as cat would
            _quiet_broken_pipe()
        except Exception as exc:
            if os.environ.get("HUB_DEBUG"):
                traceback.print_exc()
            else:
                click.secho(
                    f"internal error: {type(exc).__name__}: {exc}\n(set HUB_DEBUG=1 to see the traceback)",
                    fg="red",
                    err=True,
                )
            sys.exit(70)

    return wrapper


class _Commands:
    """What :data:`hub.core.host.COMMANDS` lends a feature's commands."""

    settings = staticmethod(settings)
    user_errors = staticmethod(user_errors)


provide(COMMANDS, _Commands())


class LazyGroup(click.Group):
    """A group whose other commands (the service's, the plugins') are imported the first time
    they are asked for, so ``hub run`` imports none of them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from hub.core.plugins import default_plugins

        names = set(super().list_commands(ctx)) | set(LAZY_COMMANDS)
        names.update(default_plugins().names("command"))
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._lazy(cmd_name)

    @staticmethod
    def _lazy(name: str) -> click.Command | None:
        from hub.core.plugins import PluginError, Ref, default_plugins

        target = LAZY_COMMANDS.get(name)
        ref = Ref(target, "hub") if target else None
        if ref is None:
            contribution = default_plugins().find("command", name)
            ref = contribution.ref if contribution else None
        if ref is None:
            return None
        try:
            command = ref.load()
        except PluginError as exc:
            return _broken_command(name, str(exc))
        return command if isinstance(command, click.Command) else _broken_command(name, f"{ref.path} is no click command")


def _broken_command(name: str, problem: str) -> click.Command:
    """Stands for a plugin command that cannot be loaded: says why, exits 1."""

    def fail() -> None:
        click.secho(f"error: the command {name!r} cannot be used: {problem}", fg="red", err=True)
        sys.exit(1)

    return click.Command(name, callback=fail, help=f"(unavailable: {problem})", add_help_option=False)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="hub")
def main() -> None:
    """hub: YAML flows with LLM steps, approvals and connectors, run durably.

    State lives in .hub/hub.db (SQLite) under the current directory unless HUB_DATABASE_URL is
    set (e.g. postgresql+psycopg://user@host/db). Secrets come from HUB_SECRET_<NAME> or
    .hub/secrets.env. Every HUB_* setting is checked when a command starts: a bad one stops it with
    one line naming the variable (exit 2); a misspelled name is a warning.
    """
    warn_misspelled()


# -- validate / schema ---------------------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@user_errors
def validate(paths: tuple[Path, ...]) -> None:
    """Check flow files (or folders of them); print every error with file:line:column."""
    from hub.flow.loader import flow_files, load_file

    _settings()  # checked first (python tasks are checked against HUB_PYTHON_MODULES)

    failed = 0
    count = 0
    for root in paths:
        for path in flow_files(root):
            count += 1
            try:
                flow = load_file(path)
            except FlowError as exc:
                failed += 1
                click.secho(str(exc), fg="red", err=True)
            else:
                click.echo(f"{click.style('ok', fg='green')}  {path}  ({flow.key}, {len(flow.all_tasks())} tasks)")
    if count == 0:
        raise HubError("no .yaml or .yml flow files found in " + ", ".join(map(str, paths)))
    if failed:
        click.secho(f"{failed} of {count} flow file(s) have errors", fg="red", err=True)
        sys.exit(1)


@main.command()
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
@user_errors
def schema(output: Path | None) -> None:
    """Print the JSON Schema of flow files (for editor autocompletion and checking)."""
    from hub.flow.schema import flow_json_schema

    text = json.dumps(flow_json_schema(), indent=2)
    if output:
        try:
            output.write_text(text + "\n")
        except OSError as exc:
            raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
        click.echo(f"wrote {output}")
    else:
        click.echo(text)


# -- run -----------------------------------------------------------------------------------------


def _deploy_dir(engine: Any, flows_dir: Path | None) -> None:
    from hub.flow.loader import flow_files, load_file

    if flows_dir is None or not flows_dir.exists():
        return
    for path in flow_files(flows_dir):
        try:
            engine.deploy(load_file(path))
        except FlowError as exc:
            click.secho(f"skipping invalid flow {path}:\n{exc}", fg="yellow", err=True)


@main.command()
@click.argument("flow_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-i", "--input", "inputs", multiple=True, metavar="NAME=VALUE", help="An input (repeatable).")
@click.option("--inputs-json", metavar="JSON", help="Inputs as a JSON object.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label on the execution.")
@click.option("--flows", "flows_dir", type=click.Path(path_type=Path), default=None,
              help="Deploy the flows in this folder first, for subflows (default: the flows/ folder if present).")
@click.option("--json", "as_json", is_flag=True, help="Print the execution as JSON (no progress lines).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@user_errors
def run(flow_file: Path, inputs: tuple[str, ...], inputs_json: str | None, labels: tuple[str, ...],
        flows_dir: Path | None, as_json: bool, quiet: bool) -> None:
    """Run a flow file here and now, with live progress; print its outputs.

    A step that waits (an LLM call, an HTTP request) shows as RUNNING at once. When a prompt the
    flow names by label (name@production) has a newer version without that label (an edited
    file), a note says which version runs and how to promote the newer one.

    Exit code: 0 SUCCESS or WARNING, 1 FAILED/KILLED/CANCELLED, 2 bad inputs, 3 PAUSED.
    """
    from hub.engine.inputs import parse_cli_inputs
    from hub.flow.loader import load_file

    bad = [pair for pair in labels if "=" not in pair]
    if bad:
        raise click.BadParameter(f"{bad[0]!r}: write KEY=VALUE", param_hint="--label")
    settings = _settings()  # first: every setting checked before anything else reads one
    flow = load_file(flow_file)
    values = parse_cli_inputs(list(inputs), inputs_json)
    label_map = dict(pair.split("=", 1) for pair in labels)
    engine = _engine(settings, runs=True)
    engine.listeners.append(Progress(quiet or as_json))
    _deploy_dir(engine, flows_dir if flows_dir is not None else settings.flows_dir)
    if not quiet and any(task.type == "llm.chat" for task in flow.all_tasks()):
        _prompt_notes(engine, flow)

    async def go() -> dict[str, Any]:
        execution_id = await engine.start(flow, values, labels=label_map, enqueue=False, claim=True,
                                          trigger={"type": "cli"})
        if not (quiet or as_json):
            click.echo(f"execution {execution_id} of {flow.key}", err=True)
        execution = await engine.run(execution_id)
        # subflows started here finish before the process ends; timers (a paused step's reminder
        # or timeout, hours away) do not hold it: the paused execution waits in the store
        await engine.queue.drain(include_timers=False)
        if "hub.llm.client" in sys.modules:  # a step called a model: close its connections
            from hub.llm.client import close_clients
            from hub.llm.services import LLM_CLIENT

            await close_clients(engine.services.get(LLM_CLIENT.name))
        return engine.store.get_execution(execution["id"])

    execution = asyncio.run(go())
    _flush_traces()
    _print_result(engine, execution, as_json)
    sys.exit(EXIT_CODES.get(execution["state"], 1))


def _prompt_notes(engine: Any, flow: Any) -> None:
    """Say which version a label the flow runs resolves to, when a newer one has no label."""
    from hub.prompts.startup import flow_prompts, label_notes

    wanted = flow_prompts(flow)
    if wanted:
        for line in label_notes(engine.store.engine, engine.settings, wanted):
            click.secho(f"note: {line}", fg="yellow", err=True)


def _print_result(engine: Any, execution: dict[str, Any], as_json: bool) -> None:
    if as_json:
        data = dict(execution)
        data["steps"] = engine.store.step_runs(execution["id"])
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(f"{_state(execution['state'])} in {_dur(execution['started_at'], execution['ended_at'])}", err=True)
    if execution.get("error"):
        err = execution["error"]
        where = f" at {err['path']}" if err.get("path") else ""
        click.secho(f"error{where}: {err.get('type')}: {err.get('message')}", fg="red", err=True)
    if execution.get("outputs"):
        click.echo(json.dumps(execution["outputs"], indent=2, default=str))


# -- executions ----------------------------------------------------------------------------------


@main.group()
def executions() -> None:
    """List and inspect executions."""


@executions.command("list")
@click.option("--namespace")
@click.option("--flow", "flow_id")
@click.option("--state", "states", multiple=True, help="Filter by state (repeatable).")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@user_errors
def executions_list(namespace: str | None, flow_id: str | None, states: tuple[str, ...], limit: int,
                    as_json: bool) -> None:
    """Recent executions, newest first."""
    engine = _engine()
    rows = engine.store.list_executions(
        namespace=namespace, flow_id=flow_id, states=[s.upper() for s in states] or None, limit=limit
    )
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("no executions")
        return
    click.echo(f"{'ID':<34} {'FLOW':<32} {'STATE':<10} {'STARTED':<20} DURATION")
    for row in rows:
        flow = f"{row['namespace']}.{row['flow_id']}"
        click.echo(
            f"{row['id']:<34} {flow:<32} {_state(row['state']):<19} {_when(row['started_at'] or row['created_at']):<20} "
            f"{_dur(row['started_at'], row['ended_at'])}"
        )


@executions.command("show")
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True)
@user_errors
def executions_show(execution_id: str, as_json: bool) -> None:
    """One execution: state, inputs, every step run (attempts, durations, outputs, errors; for LLM
    steps the prompt version, model, tokens and cost), the execution's outputs."""
    engine = _engine()
    execution = engine.store.find_execution(execution_id)
    steps = engine.store.step_runs(execution["id"])
    if as_json:
        click.echo(json.dumps({**execution, "steps": steps}, indent=2, default=str))
        return
    show_execution(engine, execution, steps)


@main.command()
@click.argument("execution_id")
@user_errors
def logs(execution_id: str) -> None:
    """Print an execution's log lines."""
    engine = _engine()
    execution = engine.store.find_execution(execution_id)
    for line in engine.store.logs(execution["id"]):
        click.echo(f"{_when(line['ts'])} {line['level']:<7} {line['path'] or '-':<20} {line['message']}")


@main.command()
@click.option("--flows", "flows_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of flows to deploy first (default: the flows/ folder if present).")
@user_errors
def resume(flows_dir: Path | None) -> None:
    """Continue every execution whose process died, after its last committed step."""
    settings = _settings()
    engine = _engine(settings, runs=True)
    engine.listeners.append(Progress())
    _deploy_dir(engine, flows_dir if flows_dir is not None else settings.flows_dir)

    async def go() -> list[str]:
        ids = await engine.resume_interrupted(run_now=True)
        await engine.queue.drain()
        return ids

    ids = asyncio.run(go())
    _flush_traces()
    if not ids:
        click.echo("nothing to resume")
        return
    for execution_id in ids:
        execution = engine.store.get_execution(execution_id)
        click.echo(f"{execution_id}  {_state(execution['state'])}")


@main.command()
@click.argument("execution_id")
@user_errors
def restart(execution_id: str) -> None:
    """Run a FAILED, KILLED or CANCELLED execution again from its failed step, keeping earlier outputs."""
    engine = _engine(runs=True)
    engine.listeners.append(Progress())
    execution = engine.store.find_execution(execution_id)

    async def go() -> dict[str, Any]:
        result = await engine.restart(execution["id"], run_now=True)
        await engine.queue.drain()
        return engine.store.get_execution(result["id"])

    result = asyncio.run(go())
    _flush_traces()
    _print_result(engine, result, False)
    sys.exit(EXIT_CODES.get(result["state"], 1))


@main.command()
@click.argument("execution_id")
@user_errors
def kill(execution_id: str) -> None:
    """Kill an execution (the process running it stops it at once)."""
    engine = _engine()
    execution = engine.store.find_execution(execution_id)
    result = asyncio.run(engine.kill(execution["id"]))
    click.echo(f"{result['id']}  {_state(result['state'])}")


# Commands of the service (the app layer), imported only when used (so `hub run` starts fast);
# features and connectors add theirs as plugins (``hub.command(name, target)``).
LAZY_COMMANDS: dict[str, str] = {
    "plugins": "hub.service.plugins_cli:plugins",
    "db": "hub.service.db_cli:db",
    "serve": "hub.service.cli:serve",
    "worker": "hub.service.cli:worker",
    "health": "hub.service.cli:health",
    "deploy": "hub.service.cli:deploy",
    "keys": "hub.service.cli:keys",
    "backfill": "hub.service.cli:backfill",
}


if __name__ == "__main__":  # pragma: no cover
    main()
