"""The ``script`` task kind."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from connectors.script.process import run_process
from connectors.script.stream import OutputSink
from connectors.script.workdir import EnvValue, collect_output_files, temporary_workdir, write_input_files
from hub.core.errors import TaskError
from hub.core.tasks import Params, TaskContext

# interpreter name -> (command line, file extension of the script written for it)
INTERPRETERS: dict[str, tuple[list[str], str]] = {
    "bash": (["bash"], ".sh"),
    "sh": (["sh"], ".sh"),
    "python3": (["python3", "-u"], ".py"),
    "python": (["python3", "-u"], ".py"),
    "node": (["node"], ".js"),
}
INHERITED = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")  # the only variables a script gets from the hub


class ScriptParams(Params):
    interpreter: str | list[str] = Field(
        "bash",
        description="bash, sh, python3, node, or any command line (a string split like a shell would, "
        "or a list); the script's file name is appended.",
    )
    script: str | None = Field(None, description="The script itself (inline).")
    command: str | list[str] | None = Field(
        None, description="Instead of a script: a command line to run (a string runs through `sh -c`, a list runs as is)."
    )
    input_files: dict[str, Any] = Field(
        default_factory=dict, description="File name -> content written into the working directory (non-strings as JSON)."
    )
    output_files: list[str] = Field(
        default_factory=list, description="Globs, relative to the working directory, of files stored and listed in the output."
    )
    env: dict[str, EnvValue] = Field(default_factory=dict, description="Environment variables (secrets allowed: redacted in the log).")
    kill_grace: float = Field(
        2.0, ge=0, description="When the step's `timeout` stops the run: seconds between SIGTERM and SIGKILL to its process group."
    )
    stderr_lines: int = Field(20, ge=1, le=500, description="Last stderr lines quoted in the error of a failed run.")
    retryable: bool = Field(False, description="Whether a non-zero exit may be retried by the step's retry policy.")

    @model_validator(mode="after")
    def _one_program(self) -> ScriptParams:
        if (self.script is None) == (self.command is None):
            raise ValueError("give exactly one of script (inline code) or command (a command line)")
        if isinstance(self.interpreter, list) and not self.interpreter:
            raise ValueError("interpreter: an empty list; give a program, e.g. [python3, -u]")
        return self


class Script:
    """Run a script (or a command) in a fresh temporary working directory. Output: ``exit_code``,
    ``outputs`` (from ``::outputs:: {json}`` lines and ``outputs.json``), ``files`` (the stored
    ``output_files``: name, size, content_type, blob), ``stdout`` (its last lines) and ``duration``."""

    type = "script"
    Params = ScriptParams

    async def run(self, ctx: TaskContext, params: ScriptParams) -> dict[str, Any]:
        sink = OutputSink(ctx, "script", tail=params.stderr_lines)
        with temporary_workdir("hub-script-") as workdir:
            write_input_files(workdir, params.input_files)
            argv = _argv(params, workdir)
            env = {k: v for k, v in os.environ.items() if k in INHERITED}
            env.update({"HOME": str(workdir), "HUB_EXECUTION_ID": ctx.execution_id, "HUB_STEP": ctx.path})
            env.update(params.env)
            started = time.monotonic()
            try:
                code = await run_process(argv, cwd=workdir, env=env, sink=sink, grace=params.kill_grace)
            except FileNotFoundError as exc:
                raise TaskError(f"script: cannot start {argv[0]!r} ({exc.strerror}); is it installed on the worker?",
                                retryable=False) from None
            if code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                raise TaskError(f"script {how}" + _quote(sink.stderr_tail()), retryable=params.retryable,
                                data={"exit_code": code})
            outputs = sink.outputs.finish(workdir)
            files = collect_output_files(ctx, workdir, params.output_files)
        return {"exit_code": code, "outputs": outputs, "files": files, "stdout": "\n".join(sink.stdout),
                "duration": round(time.monotonic() - started, 3)}


def _argv(params: ScriptParams, workdir: Path) -> list[str]:
    if params.command is not None:
        return ["sh", "-c", params.command] if isinstance(params.command, str) else list(params.command)
    assert params.script is not None
    if isinstance(params.interpreter, list):
        base, suffix = list(params.interpreter), ""
    elif params.interpreter in INTERPRETERS:
        base, suffix = INTERPRETERS[params.interpreter]
    else:
        base, suffix = shlex.split(params.interpreter), ""
    path = workdir / f".hub-script{suffix}"
    path.write_text(params.script, encoding="utf-8")
    return [*base, str(path)]


def _quote(tail: str) -> str:
    return f"; last lines of stderr:\n{tail}" if tail else " (nothing on stderr)"
