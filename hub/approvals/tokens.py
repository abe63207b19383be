"""Signed approval links: ``<payload>.<signature>``, both base64url, HMAC-SHA256 over the payload.

The payload names the gate, the approver identity, the channel the link went out on, when it
expires and a link id. The signature stops tampering and guessing; the link id (a row in
``approval_links``) makes a link usable once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any


class BadToken(Exception):
    """A link that is malformed, tampered with or signed with another key."""


@dataclass(frozen=True)
class LinkClaims:
    gate_id: str
    identity: str
    channel: str
    expires_at: float
    link_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, claims: LinkClaims) -> str:
    payload: dict[str, Any] = {
        "g": claims.gate_id, "i": claims.identity, "c": claims.channel, "x": int(claims.expires_at), "j": claims.link_id,
    }
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(key: bytes, token: str) -> LinkClaims:
    """The claims of a correctly signed token (expiry and single use are checked by the caller)."""
    body, sep, mac = token.partition(".")
    if not sep or not body or not mac:
        raise BadToken("the link is malformed")
    try:
        given = _unb64(mac)
    except ValueError:
        raise BadToken("the link is malformed") from None
    expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        raise BadToken("the link's signature does not match")
    try:
        data = json.loads(_unb64(body))
        return LinkClaims(str(data["g"]), str(data["i"]), str(data["c"]), float(data["x"]), str(data["j"]))
    except (ValueError, KeyError, TypeError):
        raise BadToken("the link is malformed") from None
