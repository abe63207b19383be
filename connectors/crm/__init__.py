"""CRM tasks: ``crm.upsert``, ``crm.search``, ``crm.get``, ``crm.associate``, ``crm.add_note``.

One interface (:class:`connectors.crm.base.CRM`), providers registered in
:data:`connectors.crm.tasks.PROVIDERS` (HubSpot first). A step picks one with ``provider``;
``HUB_CRM_PROVIDER`` sets the default.
"""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    """The CRM connector's contributions (entry point ``hub.plugins``)."""
    hub.task_kind("crm.upsert", "connectors.crm.tasks:Upsert")
    hub.task_kind("crm.search", "connectors.crm.tasks:Search")
    hub.task_kind("crm.get", "connectors.crm.tasks:Get")
    hub.task_kind("crm.associate", "connectors.crm.tasks:Associate")
    hub.task_kind("crm.add_note", "connectors.crm.tasks:AddNote")
    hub.settings("crm", "connectors.crm.settings:CrmSettings")
    hub.settings("hubspot", "connectors.crm.settings:HubSpotSettings")
