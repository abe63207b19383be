"""Email: the ``email.send`` task kind with SendGrid, SMTP and outbox backends.

For the API and CLI: :func:`connectors.email.outbox.list_messages` /
:func:`~connectors.email.outbox.get_message`, the router in :mod:`connectors.email.api`.
Importing this package is cheap (the store imports its table module).
"""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    """The Email connector's contributions (entry point ``hub.plugins``)."""
    hub.task_kind("email.send", "connectors.email.tasks:EmailSend")
    hub.tables("connectors.email.tables")
    hub.migrations("connectors.email:migrations")
    hub.router("connectors.email.api:router")
    hub.command("email", "connectors.email.cli:email")
    hub.notifier("email", "connectors.email.notify:EmailNotifier")
    hub.settings("email", "connectors.email.settings:EmailSettings")
