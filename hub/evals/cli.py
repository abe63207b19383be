"""``hub eval``: run eval files, read stored runs, export reports, grow datasets.

    hub eval evals/support_triage.yaml                     # = hub eval run ...
    hub eval evals/support_triage.yaml -V production -V latest --html report.html
    hub eval evals/support_triage.yaml --baseline ev_3f2a  # compare with an earlier run
    hub eval add-case evals/support_triage.yaml --execution 6f1c --step triage \\
        --expected '{"category": "billing", "urgency": "normal"}'

Exit codes: 0 when every compared version × model meets the thresholds, 1 when one does not
(or on an error in the eval file), for CI.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from hub.errors import HubError
from hub.prompts.cli import user_errors


def _open() -> tuple[Any, Any]:
    from hub.settings import HubSettings
    from hub.store.store import Store

    settings = HubSettings()
    return settings, Store.from_settings(settings)  # (opening a SQLite store makes its folder)


def _runner(progress: bool = False, prompts_dir: Path | None = None) -> Any:
    from hub.evals.runner import EvalRunner
    from hub.llm.client import LLMClient

    settings, store = _open()
    if prompts_dir is not None:
        settings.prompts_dir = prompts_dir
    return EvalRunner(store, LLMClient(), settings=settings, progress=_progress if progress else None)


def _progress(done: int, total: int, row: dict[str, Any]) -> None:
    if not sys.stderr.isatty():
        return
    mark = "✓" if row["passed"] else "✗"
    sys.stderr.write(f"\r\033[K  [{done}/{total}] {mark} {row['variant']} {row['case_id']}")
    if done == total:
        sys.stderr.write("\r\033[K")
    sys.stderr.flush()


class _EvalGroup(click.Group):
    """``hub eval FILE`` runs the file; ``hub eval <command>`` runs the command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(name="eval", cls=_EvalGroup)
def eval_group() -> None:
    """Evaluate prompt versions on datasets of cases: `hub eval FILE` runs one."""


@eval_group.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-V", "--version", "versions", multiple=True, help="A version or label to compare (repeatable).")
@click.option("-m", "--model", "models", multiple=True, help="A model alias to compare (repeatable).")
@click.option("-t", "--tag", "tags", multiple=True, help="Only cases with this tag (repeatable).")
@click.option("--baseline", help="An earlier run id to compare with.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the run as JSON here.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Write an HTML report here.")
@user_errors
def run_command(
    file: Path, versions: tuple[str, ...], models: tuple[str, ...], tags: tuple[str, ...], baseline: str | None,
    json_path: Path | None, html_path: Path | None,
) -> None:
    """Run an eval file: every version × model × case, then the side-by-side table."""
    from hub.evals.report import text_table
    from hub.evals.spec import load_file

    loaded = load_file(file)
    runner = _runner(progress=True)
    if baseline:
        baseline = runner.results.run(baseline)["id"]
    outcome = asyncio.run(runner.run(
        loaded, versions=list(versions) or None, models=list(models) or None, baseline=baseline, tags=list(tags) or None,
    ))
    click.echo(f"eval {loaded.spec.name}: run {outcome.run_id}\n")
    click.echo(text_table(outcome.summary))
    _export(runner.results, outcome.run_id, json_path, html_path)
    verdict = click.style("passed", fg="green", bold=True) if outcome.passed else click.style("FAILED", fg="red", bold=True)
    click.echo(f"\n{verdict}: thresholds {'met by every variant' if outcome.passed else 'not met'}")
    sys.exit(0 if outcome.passed else 1)


def _export(results: Any, run_id: str, json_path: Path | None, html_path: Path | None) -> None:
    from hub.evals.export import run_document, to_html, to_json

    if not json_path and not html_path:
        return
    document = run_document(results, run_id)
    if json_path:
        json_path.write_text(to_json(document))
        click.echo(f"wrote {json_path}")
    if html_path:
        html_path.write_text(to_html(document))
        click.echo(f"wrote {html_path}")


@eval_group.command("list")
@click.option("--name", help="Only runs of this eval.")
@click.option("-n", "--limit", default=20, show_default=True)
@user_errors
def list_command(name: str | None, limit: int) -> None:
    """Recent eval runs."""
    from hub.evals.results import EvalStore

    _, store = _open()
    for run in EvalStore(store.engine).runs(name, limit):
        verdict = {True: "passed", False: "FAILED", None: "-"}[run["passed"]]
        keys = ", ".join(v["key"] for v in run["variants"] or [])
        click.echo(f"{run['id']}  {run['name']:<24} {run['status']:<8} {verdict:<7} {keys}")


@eval_group.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="The run and every result as JSON.")
@user_errors
def show_command(run_id: str, as_json: bool) -> None:
    """A stored run: its table, or everything as JSON."""
    from hub.evals.export import run_document, to_json
    from hub.evals.report import text_table
    from hub.evals.results import EvalStore

    _, store = _open()
    results = EvalStore(store.engine)
    if as_json:
        click.echo(to_json(run_document(results, run_id)))
        return
    run = results.run(run_id)
    click.echo(f"eval {run['name']}: run {run['id']} ({run['status']})\n")
    if run["summary"]:
        click.echo(text_table(run["summary"]))
    elif run["error"]:
        click.echo(f"error: {run['error']}")


@eval_group.command("export")
@click.argument("run_id")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path))
@user_errors
def export_command(run_id: str, json_path: Path | None, html_path: Path | None) -> None:
    """Write a stored run as JSON and/or a self-contained HTML report."""
    from hub.evals.results import EvalStore

    if not json_path and not html_path:
        raise click.UsageError("give --json PATH and/or --html PATH")
    _, store = _open()
    _export(EvalStore(store.engine), run_id, json_path, html_path)


@eval_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@user_errors
def validate_command(files: tuple[Path, ...]) -> None:
    """Check eval files; every error with file:line:column."""
    from hub.evals.spec import load_file

    failed = False
    for file in files:
        try:
            loaded = load_file(file)
        except HubError as exc:
            click.secho(str(exc), fg="red", err=True)
            failed = True
            continue
        click.echo(f"{file}: ok ({len(loaded.spec.cases)} cases)")
    sys.exit(1 if failed else 0)


@eval_group.command("schema")
def schema_command() -> None:
    """The JSON Schema of eval files (for editor autocompletion)."""
    from hub.evals.spec import dump_schema

    click.echo(dump_schema())


@eval_group.command("add-case")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--call", "call_id", type=int, help="An LLM call record id.")
@click.option("--execution", "execution_id", help="An execution id (with --step).")
@click.option("--step", help="The step path of the LLM call in that execution.")
@click.option("--expected", help="The corrected expected output: JSON, or @file.json (default: the model's output).")
@click.option("--id", "case_id", help="The new case's id.")
@click.option("-t", "--tag", "tags", multiple=True)
@click.option("--note", help="Why this case was added.")
@user_errors
def add_case_command(
    file: Path, call_id: int | None, execution_id: str | None, step: str | None, expected: str | None,
    case_id: str | None, tags: tuple[str, ...], note: str | None,
) -> None:
    """Add an executed LLM call to an eval as a new case."""
    from hub.evals.dataset import add_case, case_from_call, find_call
    from hub.evals.spec import load_file

    value = None
    if expected is not None:
        raw = Path(expected[1:]).read_text() if expected.startswith("@") else expected
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
    _, store = _open()
    if execution_id:
        execution_id = store.find_execution(execution_id)["id"]
    call = find_call(store, call_id, execution_id, step)
    case = case_from_call(store, load_file(file), call, value, case_id, list(tags), note)
    written = add_case(file, case)
    click.echo(f"added case {case['id']} to {written} (from call {call['id']})")


@eval_group.command("promotions")
@click.argument("name", required=False)
@user_errors
def promotions_command(name: str | None) -> None:
    """Label moves that an eval run justified."""
    from hub.evals.results import EvalStore

    _, store = _open()
    for p in EvalStore(store.engine).promotions(name):
        click.echo(f"{p['prompt_name']}@{p['label']} → v{p['version']} (was {p['previous'] or '-'}), eval run {p['run_id']}")


# the name the hub command mounts
eval = eval_group  # noqa: A001


def require_eval(name: str, version: str, label: str, file: Path, prompts_dir: Path | None = None) -> dict[str, Any]:
    """For ``hub prompts promote --require-eval FILE``: run the eval, promote when it passes."""
    from hub.evals.gate import promote_gated
    from hub.evals.spec import load_file

    runner = _runner(progress=True, prompts_dir=prompts_dir)
    return asyncio.run(promote_gated(runner, load_file(file), name, version, label))
