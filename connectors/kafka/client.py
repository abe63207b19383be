"""Connection settings shared by the ``kafka`` trigger and the ``kafka.produce`` task."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

Render = Callable[[Any], Any]


class KafkaConnection(BaseModel):
    """Where the brokers are and how to authenticate (every string may be a template, e.g.
    ``"{{ secret('KAFKA_PASSWORD') }}"``)."""

    bootstrap_servers: str | list[str] = Field(description="host:port of one or more brokers.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = Field(None, description="CA bundle to verify the brokers (SSL, SASL_SSL).")
    ssl_certfile: str | None = Field(None, description="Client certificate (mutual TLS).")
    ssl_keyfile: str | None = None
    client_id: str = "hub"


def client_kwargs(conn: KafkaConnection, render: Render = lambda value: value) -> dict[str, Any]:
    """Keyword arguments of aiokafka's consumer and producer for ``conn`` (templates rendered)."""
    servers = render(conn.bootstrap_servers)
    out: dict[str, Any] = {
        "bootstrap_servers": servers if isinstance(servers, str) else ",".join(servers),
        "security_protocol": conn.security_protocol,
        "client_id": conn.client_id,
    }
    if conn.sasl_mechanism:
        out.update(
            sasl_mechanism=conn.sasl_mechanism,
            sasl_plain_username=render(conn.sasl_username),
            sasl_plain_password=render(conn.sasl_password),
        )
    if conn.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        out["ssl_context"] = create_ssl_context(
            cafile=render(conn.ssl_cafile), certfile=render(conn.ssl_certfile), keyfile=render(conn.ssl_keyfile)
        )
    return out


def header_list(headers: dict[str, Any] | None) -> list[tuple[str, bytes]]:
    """Kafka record headers from a mapping (values as text)."""
    return [(str(k), v if isinstance(v, bytes) else str(v).encode()) for k, v in (headers or {}).items()]
