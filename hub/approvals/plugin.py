"""Built-in plugin: approval gates decided from Slack, email links, the web page or the API."""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    hub.task_kind("approval", "hub.approvals.task:Approval")
    hub.tables("hub.approvals.tables")
    hub.migrations("hub.approvals:migrations")
    hub.router("hub.api.approvals:router")
    hub.service("approvals", "hub.approvals:hooks")  # the service itself is built on first need
    hub.settings("approval", "hub.approvals.settings:ApprovalSettings")
