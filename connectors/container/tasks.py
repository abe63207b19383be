"""The ``container`` task kind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from connectors.container.engine import (
    LABEL_EXECUTION,
    LABEL_FLOW,
    LABEL_STEP,
    DockerSettings,
    api_error,
    connect,
    ensure_image,
    in_thread,
)
from connectors.script.stream import LineSplitter, OutputSink
from connectors.script.workdir import EnvValue, collect_output_files, temporary_workdir, write_input_files
from hub.core.errors import HubError, TaskError
from hub.core.tasks import Params, TaskContext

if TYPE_CHECKING:
    import docker

DRAIN_SECONDS = 10.0  # how long the log streams may still deliver once the container has exited


class ContainerParams(Params):
    image: str = Field(description="The image, e.g. python:3.12-slim or ghcr.io/acme/scorer@sha256:...")
    pull: Literal["always", "if_missing", "never"] = Field("if_missing", description="When the image is pulled.")
    command: str | list[str] | None = Field(None, description="The command (default: the image's).")
    entrypoint: str | list[str] | None = Field(None, description="Replaces the image's entrypoint.")
    env: dict[str, EnvValue] = Field(default_factory=dict, description="Environment variables (secrets allowed: redacted in the log).")
    input_files: dict[str, Any] = Field(default_factory=dict, description="File name -> content, in the mounted working directory.")
    output_files: list[str] = Field(default_factory=list, description="Globs of files, in the working directory, stored and listed.")
    workdir: str = Field("/hub/work", description="Where the working directory is mounted in the container (also its cwd).")
    cpus: float | None = Field(None, gt=0, description="CPU limit (1.5 = one and a half cores).")
    memory: str | int | None = Field(None, description="Memory limit: bytes or 512m, 2g.")
    network: str = Field("none", description="none (default: no network), bridge, host or a network's name.")
    user: str | None = Field(None, description="The user (and group) the command runs as, e.g. 1000:1000.")
    stderr_lines: int = Field(20, ge=1, le=500, description="Last stderr lines quoted in the error of a failed run.")
    retryable: bool = Field(False, description="Whether a non-zero exit may be retried by the step's retry policy.")


class Container:
    """Run an image to its end. Output: ``exit_code``, ``outputs`` (``::outputs:: {json}`` lines and
    ``outputs.json``), ``files`` (the stored ``output_files``), ``stdout`` (its last lines), ``image``
    and ``duration``. The container is removed afterwards, whatever happened."""

    type = "container"
    Params = ContainerParams

    async def run(self, ctx: TaskContext, params: ContainerParams) -> dict[str, Any]:
        client = connect(DockerSettings())
        try:
            sink = OutputSink(ctx, "container", tail=params.stderr_lines)
            with temporary_workdir("hub-container-") as workdir:
                os.chmod(workdir, 0o777)  # the image's user may not be ours
                write_input_files(workdir, params.input_files)
                started = time.monotonic()
                code = await self._run_container(ctx, client, params, workdir, sink)
                if code != 0:
                    raise TaskError(f"container exited with code {code}" + _quote(sink.stderr_tail()),
                                    retryable=params.retryable, data={"exit_code": code})
                outputs = sink.outputs.finish(workdir)
                files = collect_output_files(ctx, workdir, params.output_files)
        finally:
            client.close()
        return {"exit_code": code, "outputs": outputs, "files": files, "stdout": "\n".join(sink.stdout),
                "image": params.image, "duration": round(time.monotonic() - started, 3)}

    async def _run_container(
        self, ctx: TaskContext, client: docker.APIClient, params: ContainerParams, workdir: Path, sink: OutputSink
    ) -> int:
        labels = {LABEL_EXECUTION: ctx.execution_id, LABEL_STEP: ctx.path, LABEL_FLOW: ctx.flow_id}
        container_id: str | None = None
        try:
            try:
                await asyncio.to_thread(remove_labelled, client, {LABEL_EXECUTION: ctx.execution_id, LABEL_STEP: ctx.path})
                await asyncio.to_thread(ensure_image, client, params.image, params.pull, ctx.log)
                container_id = await asyncio.to_thread(_create, client, params, workdir, labels)
                await asyncio.to_thread(client.start, container_id)
            except HubError:
                raise
            except Exception as exc:
                raise api_error(exc, f"starting {params.image}") from None
            ctx.log(f"container: {params.image} started ({container_id[:12]})")
            loop = asyncio.get_running_loop()
            followers = [in_thread(lambda s=stream: _follow(client, container_id, s, sink, loop), f"logs-{stream}")  # type: ignore[misc]
                         for stream in ("stdout", "stderr")]
            try:
                result = await in_thread(lambda: client.wait(container_id), "wait")
            except Exception as exc:
                raise api_error(exc, "waiting for the container") from None
            await asyncio.wait(followers, timeout=DRAIN_SECONDS)
            return int(result.get("StatusCode", -1))
        finally:
            sink.close()
            if container_id is not None:  # also when the step's timeout cancelled the run: killed, then removed
                await asyncio.shield(asyncio.to_thread(_remove, client, container_id))


def _create(client: docker.APIClient, params: ContainerParams, workdir: Path, labels: dict[str, str]) -> str:
    host_config = client.create_host_config(
        binds=[f"{workdir}:{params.workdir}:rw"],
        nano_cpus=int(params.cpus * 1e9) if params.cpus else None,
        mem_limit=params.memory,
        network_mode=params.network,
    )
    created = client.create_container(
        params.image, command=params.command, entrypoint=params.entrypoint, environment=params.env,
        working_dir=params.workdir, labels=labels, user=params.user, host_config=host_config,
        network_disabled=params.network == "none",
    )
    return str(created["Id"])


def _follow(client: docker.APIClient, container_id: str, stream: str, sink: OutputSink, loop: asyncio.AbstractEventLoop) -> None:
    """Read one of the container's streams to its end; each line handed to the sink on the loop."""
    splitter = LineSplitter()
    chunks = client.logs(container_id, stdout=stream == "stdout", stderr=stream == "stderr", stream=True, follow=True)
    for chunk in chunks:
        for line in splitter.feed(chunk):
            loop.call_soon_threadsafe(sink.line, stream, line)
    for line in splitter.flush():
        loop.call_soon_threadsafe(sink.line, stream, line)


def _remove(client: docker.APIClient, container_id: str) -> None:
    import docker

    with contextlib.suppress(docker.errors.APIError):
        client.kill(container_id)
    with contextlib.suppress(docker.errors.NotFound):
        client.remove_container(container_id, force=True)


def remove_labelled(client: docker.APIClient, labels: dict[str, str]) -> list[str]:
    """Remove every container carrying all of ``labels`` (a previous attempt's, left by a crash)."""
    found = client.containers(all=True, filters={"label": [f"{k}={v}" for k, v in labels.items()]})
    for item in found:
        _remove(client, item["Id"])
    return [item["Id"] for item in found]


def _quote(tail: str) -> str:
    return f"; last lines of stderr:\n{tail}" if tail else " (nothing on stderr)"
