"""Slack: the ``slack.post`` and ``slack.update`` task kinds.

Other features (approvals) reuse :func:`connectors.slack.client.post_message` and
:func:`connectors.slack.client.update_message`. Importing this package is cheap (the store
imports its table module); slack_sdk loads when a Slack task first runs.
"""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    """The Slack connector's contributions (entry point ``hub.plugins``)."""
    hub.task_kind("slack.post", "connectors.slack.tasks:SlackPost")
    hub.task_kind("slack.update", "connectors.slack.tasks:SlackUpdate")
    hub.tables("connectors.slack.tables")
    hub.migrations("connectors.slack:migrations")
    hub.notifier("slack", "connectors.slack.notify:SlackNotifier")
    hub.settings("slack", "connectors.slack.settings:SlackSettings")
