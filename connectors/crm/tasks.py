"""The ``crm.*`` task kinds. Each talks to the :class:`~connectors.crm.base.CRM` its ``provider`` names."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from pydantic import Field, field_validator

from connectors.crm.base import CRM, Filter
from connectors.crm.settings import CrmSettings
from hub.core.errors import TaskError
from hub.core.tasks import Params, TaskContext, TaskSettings


def _hubspot(settings: TaskSettings, token: str | None, base_url: str | None) -> CRM:
    from connectors.crm.hubspot import HubSpot
    from connectors.crm.settings import HubSpotSettings
    from hub.net import Guard
    from hub.net_settings import NetSettings

    guard = Guard.from_settings(settings.section(NetSettings))
    return HubSpot(token=token, base_url=base_url, settings=settings.section(HubSpotSettings), guard=guard)


# a provider: (the hub's settings, token, base_url) -> an open CRM
PROVIDERS: dict[str, Callable[[TaskSettings, str | None, str | None], CRM]] = {"hubspot": _hubspot}


class CrmParams(Params):
    provider: str | None = Field(None, description="The CRM: hubspot (default: HUB_CRM_PROVIDER).")
    token: str | None = Field(None, description="API token; usually {{ secret('HUBSPOT_TOKEN') }}.")
    base_url: str | None = Field(None, description="API root (default: the provider's, or HUB_<PROVIDER>_BASE_URL).")


@asynccontextmanager
async def open_crm(ctx: TaskContext, params: CrmParams) -> AsyncIterator[CRM]:
    """The CRM ``params`` name (default ``HUB_CRM_PROVIDER``), closed at the end of the block."""
    name = params.provider or ctx.settings.section(CrmSettings).provider
    factory = PROVIDERS.get(name)
    if factory is None:
        raise TaskError(f"unknown CRM provider {name!r}; use one of {', '.join(sorted(PROVIDERS))}", retryable=False)
    crm = factory(ctx.settings, params.token, params.base_url)
    try:
        yield crm
    finally:
        await crm.aclose()


class UpsertParams(CrmParams):
    object: str = Field(description="contacts, companies, deals, ... (the provider's object type).")
    id_property: str = Field(description="The unique property records are matched by, e.g. email or domain.")
    records: list[dict[str, Any]] = Field(description="Property name -> value; each must have the id property.")
    batch_size: int = Field(100, ge=1, le=100)
    allow_errors: bool = Field(False, description="Succeed with the errors listed when some records fail.")


class Upsert:
    """Create or update records by a unique property, in batches.

    Output: ``{"results": [{"id", "properties", "new"}], "created", "updated", "errors", "rate_limit"}``.
    """

    type = "crm.upsert"
    Params = UpsertParams

    async def run(self, ctx: TaskContext, params: UpsertParams) -> dict[str, Any]:
        async with open_crm(ctx, params) as crm:
            result = await crm.upsert(
                params.object, params.records, params.id_property, params.batch_size, ctx.idempotency_key
            )
            usage = crm.usage()
        if result.errors and not params.allow_errors:
            first = result.errors[0].get("message")
            raise TaskError(
                f"{len(result.errors)} of {len(params.records)} records failed to upsert; first: {first}",
                retryable=False,
                data={"errors": result.errors[:20]},
            )
        ctx.log(f"crm: upserted {len(result.results)} {params.object} ({result.created} new)")
        return {**result.model_dump(), "count": len(result.results), "rate_limit": usage}


class SearchParams(CrmParams):
    object: str
    filters: list[Filter] | dict[str, Any] = Field(
        default_factory=list, description="All must match: {property: value} or [{property, operator, value}]."
    )
    any_of: list[list[Filter]] = Field(default_factory=list, description="Alternative filter groups (OR).")
    properties: list[str] = Field(default_factory=list, description="Properties to return.")
    sorts: list[str] = Field(default_factory=list, description='"createdate" ascending, "-createdate" descending.')
    limit: int | None = Field(None, ge=1, description="At most this many records (default: all pages).")

    @field_validator("filters", mode="after")
    @classmethod
    def _plain(cls, value: Any) -> list[Filter]:
        if isinstance(value, dict):
            return [Filter(property=k, operator="eq", value=v) for k, v in value.items()]
        return list(value)


class Search:
    """Find records by filters, following every page. Output: ``{"results", "count", "total"}``."""

    type = "crm.search"
    Params = SearchParams

    async def run(self, ctx: TaskContext, params: SearchParams) -> dict[str, Any]:
        filters: list[Filter] = params.filters  # type: ignore[assignment]
        groups = [filters + g for g in params.any_of] if params.any_of else [filters]
        async with open_crm(ctx, params) as crm:
            results, total = await crm.search(params.object, groups, params.properties, params.sorts, params.limit)
        return {"results": results, "count": len(results), "total": total}


class GetParams(CrmParams):
    object: str
    id: str = Field(description="The record id, or a unique property value with id_property.")
    id_property: str | None = None
    properties: list[str] = Field(default_factory=list)
    required: bool = Field(False, description="Fail the step when the record does not exist.")


class Get:
    """Read one record. Output: ``{"found": bool, "record": {...} | null}``."""

    type = "crm.get"
    Params = GetParams

    async def run(self, ctx: TaskContext, params: GetParams) -> dict[str, Any]:
        async with open_crm(ctx, params) as crm:
            record = await crm.get(params.object, params.id, params.id_property, params.properties)
        if record is None and params.required:
            raise TaskError(f"{params.object} {params.id!r} does not exist", retryable=False)
        return {"found": record is not None, "record": record}


class AssociateParams(CrmParams):
    from_object: str
    from_id: str
    to_object: str
    to_id: str
    type_id: int | None = Field(None, description="A labelled association type id (default: the default association).")


class Associate:
    """Link two records, e.g. a contact to its company. Linking twice is harmless."""

    type = "crm.associate"
    Params = AssociateParams

    async def run(self, ctx: TaskContext, params: AssociateParams) -> dict[str, Any]:
        async with open_crm(ctx, params) as crm:
            return await crm.associate(params.from_object, params.from_id, params.to_object, params.to_id, params.type_id)


class AddNoteParams(CrmParams):
    object: str = Field(description="The record's object type: contacts, companies, deals...")
    id: str = Field(description="The record's id.")
    body: str = Field(description="The note's text (HTML allowed by HubSpot).")
    timestamp: str | None = Field(None, description="ISO time of the note (default: now).")
    association_type_id: int | None = Field(None, description="For objects without a default note association.")


class AddNote:
    """Add a note to a record's timeline. Output: the note record."""

    type = "crm.add_note"
    Params = AddNoteParams

    async def run(self, ctx: TaskContext, params: AddNoteParams) -> dict[str, Any]:
        async with open_crm(ctx, params) as crm:
            return await crm.add_note(params.object, params.id, params.body, params.timestamp, params.association_type_id)
