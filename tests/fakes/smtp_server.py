"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests, with optional STARTTLS, implicit TLS
and AUTH, plus a self-signed certificate maker.

    with smtp_server(security="starttls", cert=cert, users={"hub": "pw"}) as sink:
        ...send to 127.0.0.1:sink.port...
        sink.messages[0].rcpt_tos
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def parsed(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Sink:
    port: int = 0
    messages: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)
    """Recipient address -> SMTP reply to give at RCPT (e.g. ``"550 5.1.1 no such user"``)."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost and its key; the certificate is its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@contextmanager
def smtp_server(
    *,
    security: str = "none",
    cert: tuple[Path, Path] | None = None,
    users: dict[str, str] | None = None,
) -> Iterator[Sink]:
    """``security``: ``none``, ``starttls`` (offered and required) or ``tls`` (implicit)."""
    sink = Sink(port=free_port())
    context = None
    if security != "none":
        if cert is None:
            raise ValueError("TLS needs cert=(cert_path, key_path)")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert[0]), str(cert[1]))

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if users is not None and users.get(login) == password:
                sink.logins.append(login)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    kwargs: dict[str, Any] = {}
    if users is not None:
        if security != "starttls":
            raise ValueError("the fake takes AUTH over STARTTLS only (aiosmtpd cannot tell implicit TLS apart)")
        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
    if security == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=sink.port,
        ssl_context=context if security == "tls" else None,
        server_hostname="127.0.0.1",
        **kwargs,
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
