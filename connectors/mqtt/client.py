"""Connection settings shared by the ``mqtt`` trigger and the ``mqtt.publish`` task."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

Render = Callable[[Any], Any]


class MqttConnection(BaseModel):
    """The broker and how to authenticate (strings may be templates with ``secret()``)."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    tls: bool = Field(False, description="Connect with TLS (the system's CA bundle).")


def client(conn: MqttConnection, render: Render = lambda value: value, **options: Any) -> Any:
    """An aiomqtt client for ``conn`` (enter it with ``async with`` to connect)."""
    import ssl

    import aiomqtt

    return aiomqtt.Client(
        render(conn.host), conn.port, username=render(conn.username), password=render(conn.password),
        tls_context=ssl.create_default_context() if conn.tls else None, timeout=10, **options,
    )
