"""Notion: ``notion.create_page``, ``notion.update_page``, ``notion.query``, ``notion.append_blocks``.

Uses ``notion-client`` on Notion-Version 2025-09-03 (databases addressed through their data
sources). Configuration: ``token`` param or ``HUB_NOTION_TOKEN``; ``HUB_NOTION_BASE_URL``.
"""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    """The Notion connector's contributions (entry point ``hub.plugins``)."""
    hub.task_kind("notion.create_page", "connectors.notion.tasks:CreatePage")
    hub.task_kind("notion.update_page", "connectors.notion.tasks:UpdatePage")
    hub.task_kind("notion.query", "connectors.notion.tasks:Query")
    hub.task_kind("notion.append_blocks", "connectors.notion.tasks:AppendBlocks")
    hub.settings("notion", "connectors.notion.settings:NotionSettings")
