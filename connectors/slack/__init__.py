"""Slack: the ``slack.post`` and ``slack.update`` task kinds.

Other features (approvals) reuse :func:`connectors.slack.client.post_message` and
:func:`connectors.slack.client.update_message`. Importing this package is cheap (the store
imports its table module); slack_sdk loads when the kinds are registered.
"""

from __future__ import annotations

from typing import Any


def register(registry: Any) -> None:
    from connectors.slack.tasks import SlackPost, SlackUpdate

    registry.add(SlackPost)
    registry.add(SlackUpdate)
