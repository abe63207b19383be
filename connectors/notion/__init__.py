"""Notion: ``notion.create_page``, ``notion.update_page``, ``notion.query``, ``notion.append_blocks``.

Uses ``notion-client`` on Notion-Version 2025-09-03 (databases addressed through their data
sources). Configuration: ``token`` param or ``HUB_NOTION_TOKEN``; ``HUB_NOTION_BASE_URL``.
"""

from __future__ import annotations

from typing import Any

from connectors.notion.tasks import AppendBlocks, CreatePage, Query, UpdatePage

__all__ = ["AppendBlocks", "CreatePage", "Query", "UpdatePage", "register"]


def register(registry: Any) -> None:
    for kind in (CreatePage, UpdatePage, Query, AppendBlocks):
        registry.add(kind)
