"""A local stand-in of the Docker Engine API, served on a unix socket, for the real ``docker`` SDK.

It speaks the wire format the SDK uses (``/_ping``, ``/version``, ``/images/create`` with a JSON
progress stream, ``/images/{name}/json``, ``/containers/create|json``, ``start``, ``wait``,
``logs`` in the multiplexed stream format — an 8-byte header: stream id, three zero bytes, the
payload length big-endian — ``kill`` and ``DELETE``). A "container" runs its command as a local
process in its own process group: the directory bound to its ``WorkingDir`` is its working
directory, ``Env`` its environment. Requests are recorded in ``calls`` for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import struct
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

STDOUT, STDERR = 1, 2


@dataclass
class FakeContainer:
    id: str
    name: str
    image: str
    config: dict[str, Any]
    labels: dict[str, str]
    status: str = "created"
    exit_code: int | None = None
    output: list[tuple[int, bytes]] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None
    changed: asyncio.Condition | None = None


class FakeDockerEngine:
    """The stand-in. ``images``: the images present; ``registry``: what a pull can fetch."""

    def __init__(self, images: set[str] | None = None, registry: set[str] | None = None) -> None:
        self.images = set(images or ())
        self.registry = set(registry or ())
        self.containers: dict[str, FakeContainer] = {}
        self.calls: list[tuple[str, str]] = []
        self.pulls: list[str] = []
        self.created: list[dict[str, Any]] = []  # the body of every containers/create
        self.app = Starlette(routes=self._routes())

    def _routes(self) -> list[Route]:
        v = "/{version:path}"
        return [
            Route("/_ping", self.ping, methods=["GET", "HEAD"]), Route(v + "/_ping", self.ping, methods=["GET", "HEAD"]),
            Route("/version", self.version), Route(v + "/version", self.version),
            Route(v + "/images/create", self.pull, methods=["POST"]),
            Route(v + "/images/{name:path}/json", self.inspect_image),
            Route(v + "/containers/create", self.create, methods=["POST"]),
            Route(v + "/containers/json", self.list),
            Route(v + "/containers/{id}/json", self.inspect),
            Route(v + "/containers/{id}/start", self.start, methods=["POST"]),
            Route(v + "/containers/{id}/wait", self.wait, methods=["POST"]),
            Route(v + "/containers/{id}/logs", self.logs),
            Route(v + "/containers/{id}/kill", self.kill, methods=["POST"]),
            Route(v + "/containers/{id}", self.remove, methods=["DELETE"]),
        ]

    # --- system, images ---------------------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        return Response("OK", media_type="text/plain", headers={"Api-Version": "1.45"})

    async def version(self, request: Request) -> Response:
        return JSONResponse({"Version": "27.0.0-stand-in", "ApiVersion": "1.45", "MinAPIVersion": "1.24", "Os": "linux"})

    async def pull(self, request: Request) -> Response:
        ref = f"{request.query_params['fromImage']}:{request.query_params.get('tag') or 'latest'}"
        self.calls.append(("pull", ref))
        if ref not in self.registry:
            return JSONResponse({"message": f"pull access denied for {ref}, repository does not exist"}, status_code=404)
        self.images.add(ref)
        self.pulls.append(ref)

        async def progress() -> AsyncIterator[bytes]:
            yield b'{"status":"Pulling from library/x","id":"latest"}\r\n'
            yield b'{"status":"Status: Downloaded newer image for ' + ref.encode() + b'"}\r\n'

        return StreamingResponse(progress(), media_type="application/json")

    async def inspect_image(self, request: Request) -> Response:
        name = request.path_params["name"]
        ref = name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"
        if ref not in self.images:
            return JSONResponse({"message": f"No such image: {name}"}, status_code=404)
        return JSONResponse({"Id": "sha256:" + uuid.uuid5(uuid.NAMESPACE_URL, ref).hex, "RepoTags": [ref]})

    # --- containers -------------------------------------------------------------------------

    def _get(self, request: Request) -> FakeContainer | None:
        key = request.path_params["id"]
        for c in self.containers.values():
            if key in (c.id, c.name) or (len(key) >= 12 and c.id.startswith(key)):
                return c
        return None

    @staticmethod
    def _missing(request: Request) -> Response:
        return JSONResponse({"message": f"No such container: {request.path_params['id']}"}, status_code=404)

    async def create(self, request: Request) -> Response:
        body = await request.json()
        self.created.append(body)
        image = body["Image"] if ":" in body["Image"].rsplit("/", 1)[-1] else body["Image"] + ":latest"
        self.calls.append(("create", image))
        if image not in self.images:
            return JSONResponse({"message": f"No such image: {image}"}, status_code=404)
        cid = uuid.uuid4().hex + uuid.uuid4().hex
        name = request.query_params.get("name") or f"fake_{cid[:8]}"
        self.containers[cid] = FakeContainer(cid, name, image, body, dict(body.get("Labels") or {}))
        return JSONResponse({"Id": cid, "Warnings": []}, status_code=201)

    def _summary(self, c: FakeContainer) -> dict[str, Any]:
        return {"Id": c.id, "Names": ["/" + c.name], "Image": c.image, "Labels": c.labels,
                "State": c.status, "Status": c.status, "Created": int(time.time())}

    async def list(self, request: Request) -> Response:
        import json

        filters = json.loads(request.query_params.get("filters") or "{}")
        wanted = filters.get("label") or []
        show_all = request.query_params.get("all") in ("1", "true", "True")
        out = []
        for c in self.containers.values():
            if not show_all and c.status != "running":
                continue
            if all(_label_matches(c.labels, w) for w in wanted):
                out.append(self._summary(c))
        return JSONResponse(out)

    async def inspect(self, request: Request) -> Response:
        c = self._get(request)
        if c is None:
            return self._missing(request)
        return JSONResponse({
            "Id": c.id, "Name": "/" + c.name, "Image": c.image,
            "Config": {**c.config, "Tty": bool(c.config.get("Tty")), "Labels": c.labels},
            "HostConfig": c.config.get("HostConfig") or {},
            "State": {"Status": c.status, "Running": c.status == "running", "ExitCode": c.exit_code or 0},
        })

    async def start(self, request: Request) -> Response:
        c = self._get(request)
        if c is None:
            return self._missing(request)
        self.calls.append(("start", c.id))
        workdir = _bound_dir(c.config) or tempfile.mkdtemp(prefix="fake-docker-")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update(item.split("=", 1) for item in c.config.get("Env") or [] if "=" in item)  # type: ignore[misc]
        cmd = c.config.get("Cmd") or ["true"]
        c.changed = asyncio.Condition()
        c.process = await asyncio.create_subprocess_exec(
            *cmd, cwd=workdir, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        c.status = "running"
        asyncio.get_running_loop().create_task(self._supervise(c))
        return Response(status_code=204)

    async def _supervise(self, c: FakeContainer) -> None:
        assert c.process is not None and c.changed is not None

        async def pump(stream: asyncio.StreamReader | None, kind: int) -> None:
            while stream and (chunk := await stream.read(4096)):
                async with c.changed:  # type: ignore[union-attr]
                    c.output.append((kind, chunk))
                    c.changed.notify_all()  # type: ignore[union-attr]

        await asyncio.gather(pump(c.process.stdout, STDOUT), pump(c.process.stderr, STDERR), c.process.wait())
        async with c.changed:
            code = c.process.returncode or 0
            c.exit_code = code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as Docker reports
            c.status = "exited"
            c.changed.notify_all()

    async def wait(self, request: Request) -> Response:
        c = self._get(request)
        if c is None:
            return self._missing(request)
        if c.changed is not None:
            async with c.changed:
                await c.changed.wait_for(lambda: c.status != "running")
        return JSONResponse({"StatusCode": c.exit_code or 0, "Error": None})

    async def logs(self, request: Request) -> Response:
        c = self._get(request)
        if c is None:
            return self._missing(request)
        want = {STDOUT} if request.query_params.get("stdout") in ("1", "true") else set()
        if request.query_params.get("stderr") in ("1", "true"):
            want.add(STDERR)
        follow = request.query_params.get("follow") in ("1", "true")

        async def frames() -> AsyncIterator[bytes]:
            sent = 0
            while True:
                while sent < len(c.output):
                    kind, data = c.output[sent]
                    sent += 1
                    if kind in want:
                        yield struct.pack(">BxxxL", kind, len(data)) + data
                if not follow or c.changed is None or c.status != "running":
                    if sent >= len(c.output):
                        return
                    continue
                seen = sent

                def moved() -> bool:
                    return seen < len(c.output) or c.status != "running"  # noqa: B023 (awaited at once)

                async with c.changed:
                    await c.changed.wait_for(moved)

        return StreamingResponse(frames(), media_type="application/vnd.docker.multiplexed-stream")

    async def kill(self, request: Request) -> Response:
        c = self._get(request)
        if c is None:
            return self._missing(request)
        self.calls.append(("kill", c.id))
        if c.status != "running" or c.process is None:
            return JSONResponse({"message": f"container {c.id} is not running"}, status_code=409)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(c.process.pid, signal.SIGKILL)
        return Response(status_code=204)

    async def remove(self, request: Request) -> Response:
        c = self._get(request)
        if c is None:
            return self._missing(request)
        self.calls.append(("remove", c.id))
        if c.status == "running":
            if request.query_params.get("force") not in ("1", "true", "True"):
                return JSONResponse({"message": "cannot remove a running container: stop it or use force"}, status_code=409)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(c.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
        del self.containers[c.id]
        return Response(status_code=204)


def _label_matches(labels: dict[str, str], wanted: str) -> bool:
    key, _, value = wanted.partition("=")
    return key in labels and (not value or labels[key] == value)


def _bound_dir(config: dict[str, Any]) -> str | None:
    target = config.get("WorkingDir")
    for bind in (config.get("HostConfig") or {}).get("Binds") or []:
        source, _, rest = bind.partition(":")
        if rest.split(":")[0] == target:
            return source
    return None


@contextlib.contextmanager
def serve_unix(app: Any, path: Path) -> Iterator[str]:
    """Serve ``app`` on the unix socket ``path`` in a background thread; yields ``unix://<path>``."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, uds=str(path), log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the stand-in Docker engine did not start")
        time.sleep(0.01)
    try:
        yield f"unix://{path}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
