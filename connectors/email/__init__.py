"""Email: the ``email.send`` task kind with SendGrid, SMTP and outbox backends.

For the API and CLI: :func:`connectors.email.outbox.list_messages` /
:func:`~connectors.email.outbox.get_message`, the router in :mod:`connectors.email.api`.
Importing this package is cheap (the store imports its table module).
"""

from __future__ import annotations

from typing import Any


def register(registry: Any) -> None:
    from connectors.email.tasks import EmailSend

    registry.add(EmailSend)
