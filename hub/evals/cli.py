"""``hub eval``: run eval files, read stored runs, export reports, grow datasets.

    hub eval evals/support_triage.yaml                     # = hub eval run ...
    hub eval evals/support_triage.yaml -V production -V latest --html report.html
    hub eval evals/support_triage.yaml --baseline ev_3f2a  # compare with an earlier run
    hub eval add-case evals/support_triage.yaml --execution 6f1c --step triage \\
        --expected '{"category": "billing", "urgency": "normal"}'

    hub eval evals/support_triage.yaml --candidate support_triage:5 --against support_triage@production

Exit codes, for CI: 0 every threshold (and gate) met, 1 one is not, 2 the eval file or what it
refers to is invalid (nothing was called), 3 the run could not complete (provider down).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from hub.errors import HubError
from hub.prompts.cli_errors import user_errors


def _open() -> tuple[Any, Any]:
    from hub.core.host import COMMANDS, lookup
    from hub.store.store import Store

    config = lookup(COMMANDS).settings()
    return config, Store.from_settings(config)  # (opening a SQLite store makes its folder)


def _runner(progress: bool = False, prompts_dir: Path | None = None) -> Any:
    """The runner of ``hub eval``: on the store's database alone (a prompt's eval needs no more;
    a flow's makes the full store when it starts), so that the command imports no engine table."""
    from hub.core.host import COMMANDS, lookup
    from hub.evals.runner import EvalRunner
    from hub.llm.client import LLMClient
    from hub.llm.settings import LLMSettings
    from hub.store.database import Database

    settings = lookup(COMMANDS).settings()
    store = Database.from_settings(settings)  # (opening a SQLite store makes its folder)
    if prompts_dir is not None:
        settings.prompts_dir = prompts_dir
    client = LLMClient(settings.section(LLMSettings))
    return EvalRunner(store, client, settings=settings, progress=_progress if progress else None)


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


def _reference(text: str, prompt: str | None, option: str) -> str:
    """``triage:3`` / ``triage@production`` / ``3`` / ``production`` -> the version or label."""
    for sep in (":", "@"):
        if sep in text:
            name, ref = text.split(sep, 1)
            if prompt is not None and name != prompt:
                raise click.BadParameter(f"the eval compares prompt {prompt!r}, not {name!r}", param_hint=option)
            return ref
    return text


@eval_group.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-V", "--version", "versions", multiple=True, help="A version or label to compare (repeatable).")
@click.option("-m", "--model", "models", multiple=True, help="A model alias to compare (repeatable).")
@click.option("--candidate", help="The version to judge: NAME:V (or V, or a label), with --against.")
@click.option("--against", help="The version it would replace: NAME@production (or a version).")
@click.option("-t", "--tag", "tags", multiple=True, help="Only cases with this tag (repeatable).")
@click.option("--cases", "patterns", multiple=True, help="Only cases whose id matches this glob (repeatable).")
@click.option("--filter-failing", "failing", metavar="RUN_ID", help="Only the cases that failed in that run.")
@click.option("--repeat", type=click.IntRange(1, 50), help="Run each case N times (default: the file's).")
@click.option("--max-concurrency", "concurrency", type=click.IntRange(1, 256), help="Case runs at once (default: the file's).")
@click.option("--no-cache", is_flag=True, help="Ask the models again instead of reusing cached answers.")
@click.option("--baseline", help="An earlier run id to compare with.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the run as JSON here.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Write an HTML report here.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), help="Write a JUnit XML report here.")
def run_command(
    file: Path, versions: tuple[str, ...], models: tuple[str, ...], candidate: str | None, against: str | None,
    tags: tuple[str, ...], patterns: tuple[str, ...], failing: str | None, repeat: int | None, concurrency: int | None,
    no_cache: bool, baseline: str | None, json_path: Path | None, html_path: Path | None, junit_path: Path | None,
) -> None:
    """Run an eval file: every version × model × case, then the side-by-side table.

    Exit codes: 0 every threshold and gate met; 1 one is not; 2 the eval file or what it refers
    to is invalid (checked before any model call); 3 the run could not complete (a provider
    still failing after the retries)."""
    code = _run_exit_code(lambda: _run(
        file, versions, models, candidate, against, tags, patterns, failing, repeat, concurrency, no_cache, baseline,
        json_path, html_path, junit_path,
    ))
    sys.exit(code)


def _run_exit_code(work: Any) -> int:
    from hub.errors import FlowError, InvalidSettings, NotFound
    from hub.evals.preflight import EvalReferenceError
    from hub.prompts.spec import PromptFileError

    try:
        return int(work())
    except (FlowError, EvalReferenceError, NotFound, PromptFileError, click.BadParameter) as exc:
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        click.secho(message if isinstance(exc, FlowError) else f"error: {message}", fg="red", err=True)
        return 2
    except InvalidSettings as exc:
        for problem in exc.problems:
            click.secho(f"error: {problem}", fg="red", err=True)
        return 2
    except HubError as exc:  # the run broke off (its partial results are stored)
        click.secho(f"error: the run could not complete: {exc}", fg="red", err=True)
        return 3
    except (ValueError, OSError) as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        return 2


def _run(
    file: Path, versions: tuple[str, ...], models: tuple[str, ...], candidate: str | None, against: str | None,
    tags: tuple[str, ...], patterns: tuple[str, ...], failing: str | None, repeat: int | None, concurrency: int | None,
    no_cache: bool, baseline: str | None, json_path: Path | None, html_path: Path | None, junit_path: Path | None,
) -> int:
    from hub.evals.report import text_table
    from hub.evals.runner import Selection
    from hub.evals.spec import load_file

    loaded = load_file(file)
    if (candidate is None) != (against is None):
        raise click.BadParameter("give both --candidate NAME:V and --against NAME@LABEL", param_hint="--candidate")
    if candidate and versions:
        raise click.BadParameter("--candidate/--against choose the versions; drop -V", param_hint="-V")
    prompt = loaded.spec.target.prompt
    compare = None
    if candidate and against:
        compare = (_reference(candidate, prompt, "--candidate"), _reference(against, prompt, "--against"))
    runner = _runner(progress=True)
    if baseline:
        baseline = runner.results.run(baseline)["id"]
    only = failing_cases(runner.results, failing) if failing else None
    select = Selection(
        tags=list(tags) or None, patterns=list(patterns) or None, only=only, repeat=repeat, concurrency=concurrency,
        cache=False if no_cache else None,
    )
    if not select.cases(loaded):
        raise click.BadParameter("no case of the eval matches the tags, --cases and --filter-failing given", param_hint="--cases")
    outcome = asyncio.run(runner.run(
        loaded, versions=list(versions) or None, models=list(models) or None, baseline=baseline, select=select, compare=compare,
    ))
    click.echo(f"eval {loaded.spec.name}: run {outcome.run_id}\n")
    click.echo(text_table(outcome.summary))
    _export(runner.results, outcome.run_id, json_path, html_path, junit_path)
    if outcome.incomplete:
        click.secho(f"\nINCOMPLETE: {outcome.summary['incomplete']} case run(s) got no answer", fg="yellow", bold=True)
        return 3
    verdict = click.style("passed", fg="green", bold=True) if outcome.passed else click.style("FAILED", fg="red", bold=True)
    if compare:
        click.echo(f"\n{verdict}: the candidate {'meets' if outcome.passed else 'does not meet'} the gates and thresholds")
    else:
        click.echo(f"\n{verdict}: thresholds {'met by every variant' if outcome.passed else 'not met'}")
    return 0 if outcome.passed else 1


def failing_cases(results: Any, run_id: str) -> set[str]:
    """The ids of the cases that failed (in some variant, some repeat) in a stored run."""
    run = results.run(run_id)
    return {r["case_id"] for r in results.results(run["id"]) if not r["passed"]}


def _export(
    results: Any, run_id: str, json_path: Path | None, html_path: Path | None, junit_path: Path | None = None,
) -> None:
    if junit_path:
        from hub.evals.junit import to_junit

        run = results.run(run_id)
        junit_path.write_text(to_junit(run, results.results(run["id"])))
        click.echo(f"wrote {junit_path}")
    if not json_path and not html_path:
        return
    from hub.evals.export import run_document, to_html, to_json

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
    sys.exit(2 if failed else 0)


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


@eval_group.group("online", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@user_errors
def online_group(ctx: click.Context, as_json: bool) -> None:
    """Online scoring: each attached eval's window of scores and alert state."""
    if ctx.invoked_subcommand is not None:
        return
    from hub.evals.online_store import OnlineStore

    _, store = _open()
    rows = OnlineStore(store.engine).status()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no eval is attached; 'hub eval online attach FILE' attaches one with an 'online:' section")
    for r in rows:
        mean = "-" if r["mean_score"] is None else f"{r['mean_score']:.3f}"
        before = "" if r["previous_mean_score"] is None else f" (window before: {r['previous_mean_score']:.3f})"
        state = click.style("ALERTING", fg="red", bold=True) if r["alerting"] else "ok"
        limit = f", alert below {r['alert_below']:g}" if r["alert_below"] is not None else ""
        click.echo(f"{r['name']}: {r['prompt_name']}@{r['label']} sampled at {r['sample_rate']:g}; mean score {mean} over "
                   f"the last {r['samples']} of {r['scored']} scored{before}{limit}: {state}")


@online_group.command("attach")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@user_errors
def online_attach(file: Path) -> None:
    """Attach an eval file's 'online:' section: its assertions score sampled production calls."""
    from hub.evals.online_store import OnlineStore
    from hub.evals.spec import load_file

    loaded = load_file(file)
    _, store = _open()
    row = OnlineStore(store.engine).attach(loaded)
    click.echo(f"attached {row['name']} to {row['prompt_name']}@{row['label']} (sample rate {row['sample_rate']:g})")


@online_group.command("detach")
@click.argument("name")
@user_errors
def online_detach(name: str) -> None:
    """Stop scoring with the attached eval NAME (its scores stay)."""
    from hub.evals.online_store import OnlineStore

    _, store = _open()
    OnlineStore(store.engine).detach(name)
    click.echo(f"detached {name}")


# the name the hub command mounts
eval = eval_group  # noqa: A001


def require_eval(
    name: str, version: str, label: str, file: Path, prompts_dir: Path | None = None, actor: str | None = None,
) -> dict[str, Any]:
    """For ``hub prompts promote --require-eval FILE``: run the eval (the candidate against the
    version the label names now), promote when it passes."""
    from hub.evals.gate import promote_gated
    from hub.evals.spec import load_file

    runner = _runner(progress=True, prompts_dir=prompts_dir)
    return asyncio.run(promote_gated(runner, load_file(file), name, version, label, actor=actor))
