"""The CRM interface every provider implements, and the shapes it speaks.

A record is ``{"id": "123", "properties": {...}, "created_at": ..., "updated_at": ...}`` whatever
the provider. Filters are provider-neutral (:class:`Filter`); each provider translates them.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import Field

from hub.core.tasks import Params

Record = dict[str, Any]
Operator = Literal[
    "eq", "neq", "lt", "lte", "gt", "gte", "between", "in", "not_in",
    "contains", "not_contains", "has_property", "not_has_property",
]  # fmt: skip


class Filter(Params):
    property: str
    operator: Operator = "eq"
    value: Any = None
    high_value: Any = Field(None, description="between: the upper bound (value is the lower).")


class UpsertResult(Params):
    results: list[dict[str, Any]] = Field(default_factory=list)
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = Field(default_factory=list)


class CRM(Protocol):
    """What the ``crm.*`` tasks need of a CRM. One instance per step; close it with ``aclose``."""

    name: str

    async def upsert(
        self, object_type: str, records: list[dict[str, Any]], id_property: str, batch_size: int, trace_id: str | None
    ) -> UpsertResult:
        """Create or update each record, matched by the unique ``id_property``, in batches."""
        ...

    async def search(
        self,
        object_type: str,
        groups: list[list[Filter]],
        properties: list[str],
        sorts: list[str],
        limit: int | None,
    ) -> tuple[list[Record], int]:
        """Records matching any group (each group: all its filters); every page followed. -> (records, total)"""
        ...

    async def get(
        self, object_type: str, record_id: str, id_property: str | None, properties: list[str]
    ) -> Record | None:
        """One record by id (or by a unique property), None when there is none."""
        ...

    async def associate(
        self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int | None
    ) -> dict[str, Any]:
        """Link two records (the default association, or a labelled one by ``type_id``)."""
        ...

    async def add_note(
        self, object_type: str, record_id: str, body: str, timestamp: str | None, type_id: int | None
    ) -> Record:
        """Attach a note to a record's timeline."""
        ...

    async def aclose(self) -> None: ...

    def usage(self) -> dict[str, Any]:
        """Rate-limit information from the last response (provider specific, may be empty)."""
        ...
