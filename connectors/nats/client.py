"""Connection settings shared by the ``nats`` trigger and the ``nats.publish`` task."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

Render = Callable[[Any], Any]


class NatsConnection(BaseModel):
    """Where the servers are and how to authenticate (strings may be templates with ``secret()``)."""

    servers: str | list[str] = Field("nats://127.0.0.1:4222", description="nats:// URL(s) of the servers.")
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = Field(None, description="Path of a .creds file (NATS decentralised auth).")


async def connect(conn: NatsConnection, render: Render = lambda value: value) -> Any:
    """A connected nats-py client that does not reconnect by itself (the trigger's loop does)."""
    import nats

    servers = render(conn.servers)
    options: dict[str, Any] = {"servers": [servers] if isinstance(servers, str) else list(servers),
                               "allow_reconnect": False, "connect_timeout": 5}
    for name in ("user", "password", "token"):
        value = render(getattr(conn, name))
        if value is not None:
            options[name] = value
    if conn.creds:
        options["user_credentials"] = render(conn.creds)
    return await nats.connect(**options)


def durable_name(text: str) -> str:
    """A valid durable consumer / stream name (no dots, spaces, '*' or '>')."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


async def ensure_stream(js: Any, name: str, subjects: list[str]) -> None:
    """Have the JetStream stream ``name`` exist, created with ``subjects`` when it does not.
    Several processes may create it at once (each worker's consumer of one trigger, or a
    dead-letter stream first needed by two of them): the server can refuse the later create as
    "subjects overlap with an existing stream", the one just made. A refused create is taken as
    done when the stream is there, and raised when it is not (subjects another stream holds)."""
    from nats.js.errors import BadRequestError, NotFoundError

    try:
        await js.stream_info(name)
        return
    except NotFoundError:
        pass
    try:
        await js.add_stream(name=name, subjects=subjects)
    except BadRequestError as refused:
        try:
            await js.stream_info(name)
        except NotFoundError:
            raise refused from None

