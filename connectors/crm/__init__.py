"""CRM tasks: ``crm.upsert``, ``crm.search``, ``crm.get``, ``crm.associate``, ``crm.add_note``.

One interface (:class:`connectors.crm.base.CRM`), providers registered in
:data:`connectors.crm.tasks.PROVIDERS` (HubSpot first). A step picks one with ``provider``;
``HUB_CRM_PROVIDER`` sets the default.
"""

from __future__ import annotations

from typing import Any

from connectors.crm.tasks import AddNote, Associate, Get, Search, Upsert

__all__ = ["AddNote", "Associate", "Get", "Search", "Upsert", "register"]


def register(registry: Any) -> None:
    for kind in (Upsert, Search, Get, Associate, AddNote):
        registry.add(kind)
