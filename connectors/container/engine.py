"""Talking to the Docker Engine: the client, the labels the hub puts on its containers, the pull
policy, and blocking SDK calls run on threads of their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.core.errors import ConnectorError, TaskError

if TYPE_CHECKING:
    import docker

LABEL_EXECUTION = "hub.execution"
LABEL_STEP = "hub.step"
LABEL_FLOW = "hub.flow"

T = TypeVar("T")


class DockerSettings(BaseSettings):
    """``HUB_DOCKER_*``: which Docker engine the container task and its sweeper use."""

    model_config = SettingsConfigDict(env_prefix="HUB_DOCKER_", extra="ignore")

    host: str | None = Field(
        None, description="The engine's address (unix:///var/run/docker.sock, tcp://host:2376, ssh://user@host); "
        "unset: DOCKER_HOST or the local socket."
    )
    timeout: float = Field(60.0, gt=0, description="Seconds per Engine API request (not the container's run time).")


def connect(settings: DockerSettings) -> docker.APIClient:
    """A low-level client of the configured engine (nothing is asked of the engine yet)."""
    import docker

    try:
        if settings.host:
            return docker.APIClient(base_url=settings.host, timeout=int(settings.timeout))
        return docker.APIClient(timeout=int(settings.timeout), **docker.utils.kwargs_from_env())
    except docker.errors.DockerException as exc:
        import requests

        where = settings.host or "DOCKER_HOST / the local socket"
        if isinstance(exc.__context__, requests.exceptions.ConnectionError | OSError):
            raise TaskError(f"docker: the engine cannot be reached at {where} ({exc}); is it running, "
                            "is HUB_DOCKER_HOST right?") from None
        raise TaskError(f"docker: cannot use the engine at {where} ({exc}); set HUB_DOCKER_HOST", retryable=False) from None


def api_error(exc: Exception, what: str) -> TaskError:
    """An SDK error as a hub error: the engine's explanation; 5xx and unreachable engines retryable."""
    import docker

    if isinstance(exc, docker.errors.APIError):
        status = exc.status_code or 500
        return ConnectorError(f"docker: {what}: {exc.explanation or exc}", status=status)
    if isinstance(exc, docker.errors.DockerException | OSError):
        return TaskError(f"docker: {what}: the engine cannot be reached ({exc}); is it running, is HUB_DOCKER_HOST right?")
    return TaskError(f"docker: {what}: {exc}")


def ensure_image(client: docker.APIClient, image: str, policy: str, log: Callable[[str], None]) -> None:
    """Make ``image`` present according to ``policy`` (always | if_missing | never)."""
    import docker

    if policy != "always":
        try:
            client.inspect_image(image)
            return
        except docker.errors.ImageNotFound:
            if policy == "never":
                raise TaskError(f"docker: image {image} is not on the engine and pull is 'never' "
                                "(pull it there first, or set pull: if_missing)", retryable=False) from None
    repo, tag = docker.utils.parse_repository_tag(image)
    log(f"container: pulling {image}")
    for event in client.pull(repo, tag=tag or "latest", stream=True, decode=True):
        if isinstance(event, dict) and event.get("error"):
            raise TaskError(f"docker: pulling {image} failed: {event['error']}", retryable=False)
    log(f"container: pulled {image}")


def in_thread(fn: Callable[[], T], name: str) -> asyncio.Future[T]:
    """Run a blocking call on a thread of its own (a container's wait and log follow last as long
    as the container: they would fill the default executor); its result as a future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def target() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(settle, False, exc)
        else:
            loop.call_soon_threadsafe(settle, True, result)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
