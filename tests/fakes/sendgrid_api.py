"""A fake of SendGrid's v3 Mail Send endpoint on its documented wire format.

- ``POST /v3/mail/send`` with ``Authorization: Bearer <api key>`` and a JSON body;
- success: ``202 Accepted``, empty body, ``X-Message-Id`` header; sandbox mode
  (``mail_settings.sandbox_mode.enable``): ``200 OK``, empty body, nothing delivered;
- errors: ``{"errors": [{"message", "field", "help"}]}`` with 400 (validation), 401 (bad key),
  413, 429 (with ``X-RateLimit-Limit/Remaining/Reset``) and 5xx.

Point the sendgrid library at it with ``SendGridAPIClient(api_key, host=url)``.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def _error(status: int, message: str, field_name: str | None = None, headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [{"message": message, "field": field_name, "help": None}]}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class FakeSendGrid:
    api_keys: set[str] = field(default_factory=lambda: {"SG.test-key"})
    delivered: list[dict[str, Any]] = field(default_factory=list)
    sandboxed: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _failures: list[Response] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[Route("/v3/mail/send", self._send, methods=["POST"])])

    def rate_limit(self, reset_in: int = 1) -> None:
        """The next request gets 429 with SendGrid's rate-limit headers."""
        self._failures.append(
            _error(
                429,
                "too many requests",
                headers={
                    "X-RateLimit-Limit": "600",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time()) + reset_in),
                },
            )
        )

    def reject(self, status: int, message: str, field_name: str | None = None) -> None:
        """The next request gets ``status`` with one error object."""
        self._failures.append(_error(status, message, field_name))

    def server_error(self, status: int = 500) -> None:
        self._failures.append(_error(status, "internal error"))

    async def _send(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        body = await request.json() if request.headers.get("content-type", "").startswith("application/json") else None
        self.requests.append({"auth": auth, "body": body, "headers": dict(request.headers)})
        if self._failures:
            return self._failures.pop(0)
        if not auth.startswith("Bearer ") or auth[7:] not in self.api_keys:
            return _error(401, "The provided authorization grant is invalid, expired, or revoked")
        if not isinstance(body, dict):
            return _error(400, "Bad Request", None)
        problem = self._validate(body)
        if problem:
            return _error(400, problem[1], problem[0])
        if body.get("mail_settings", {}).get("sandbox_mode", {}).get("enable"):
            self.sandboxed.append(body)
            return Response(status_code=200)
        message_id = uuid.uuid4().hex[:22]
        self.delivered.append({"id": message_id, **body})
        return Response(status_code=202, headers={"X-Message-Id": message_id})

    @staticmethod
    def _validate(body: dict[str, Any]) -> tuple[str | None, str] | None:
        personalizations = body.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            return "personalizations", "The personalizations field is required and must have at least one personalization."
        for i, p in enumerate(personalizations):
            if not p.get("to"):
                return f"personalizations.{i}.to", "The to array is required for all personalization objects."
            emails = [e.get("email", "").lower() for kind in ("to", "cc", "bcc") for e in p.get(kind, [])]
            if len(emails) != len(set(emails)):
                return (
                    f"personalizations.{i}",
                    "Each email address in the personalization block should be unique between to, cc, and bcc.",
                )
            for key, value in (p.get("custom_args") or {}).items():
                if not isinstance(value, str):
                    return f"personalizations.{i}.custom_args.{key}", "Custom args values must be strings."
        if not (body.get("from") or {}).get("email"):
            return "from.email", "The from email does not contain a valid address."
        if not body.get("subject") and not body.get("template_id"):
            return "subject", "The subject is required."
        content = body.get("content") or []
        if not body.get("template_id") and (not content or not all(c.get("value") for c in content)):
            return "content", "The content value must be a string at least one character in length."
        types = [c.get("type") for c in content]
        if "text/plain" in types and types.index("text/plain") != 0:
            return "content", "If present, text/plain must be first, followed by any other content."
        for key, value in (body.get("custom_args") or {}).items():
            if not isinstance(value, str):
                return f"custom_args.{key}", "Custom args values must be strings."
        for i, a in enumerate(body.get("attachments") or []):
            if not a.get("filename"):
                return f"attachments.{i}.filename", "The attachment filename parameter is required."
            try:
                base64.b64decode(a.get("content", ""), validate=True)
            except (binascii.Error, ValueError):
                return f"attachments.{i}.content", "The attachment content must be base64 encoded."
        return None
