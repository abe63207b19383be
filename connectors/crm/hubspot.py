"""HubSpot, through its v3 CRM objects API and v4 associations, with httpx.

- upsert: ``POST /crm/v3/objects/{object}/batch/upsert`` (≤100 inputs, ``idProperty`` per input);
- search: ``POST /crm/v3/objects/{object}/search`` (filterGroups, sorts, paging ``after``);
- get: ``GET /crm/v3/objects/{object}/{id}`` (``idProperty`` for a unique property);
- associate: ``PUT /crm/v4/objects/{from}/{id}/associations/default/{to}/{id}`` (or a labelled type);
- notes: ``POST /crm/v3/objects/notes`` with an association to the record.

429s are waited out inside the step (``Retry-After``, else the rate-limit window) a few times, then
raised as a retryable :class:`~hub.errors.ConnectorError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any

import httpx

from connectors.crm.base import Filter, Record, UpsertResult
from connectors.crm.settings import HubSpotSettings
from hub.core.errors import ConnectorError, TaskError
from hub.net import Guard, http_client, retry_after

BATCH_LIMIT = 100
SEARCH_PAGE = 100
SEARCH_CAP = 10_000  # HubSpot's search returns at most this many results per query
OPERATORS = {
    "eq": "EQ", "neq": "NEQ", "lt": "LT", "lte": "LTE", "gt": "GT", "gte": "GTE", "between": "BETWEEN",
    "in": "IN", "not_in": "NOT_IN", "contains": "CONTAINS_TOKEN", "not_contains": "NOT_CONTAINS_TOKEN",
    "has_property": "HAS_PROPERTY", "not_has_property": "NOT_HAS_PROPERTY",
}  # fmt: skip
# HubSpot-defined association type ids, note -> record
NOTE_TO = {"contacts": 202, "companies": 190, "deals": 214, "tickets": 228}
RATE_HEADERS = {
    "max": "x-hubspot-ratelimit-max",
    "remaining": "x-hubspot-ratelimit-remaining",
    "interval_ms": "x-hubspot-ratelimit-interval-milliseconds",
    "daily": "x-hubspot-ratelimit-daily",
    "daily_remaining": "x-hubspot-ratelimit-daily-remaining",
}


def _hubspot_filter(f: Filter) -> dict[str, Any]:
    out: dict[str, Any] = {"propertyName": f.property, "operator": OPERATORS[f.operator]}
    if f.operator in ("in", "not_in"):
        values = f.value if isinstance(f.value, list) else [f.value]
        out["values"] = [str(v) for v in values]
    elif f.operator == "between":
        out["value"], out["highValue"] = str(f.value), str(f.high_value)
    elif f.operator not in ("has_property", "not_has_property"):
        out["value"] = str(f.value).lower() if isinstance(f.value, bool) else str(f.value)
    return out


def _record(obj: dict[str, Any]) -> Record:
    out: Record = {
        "id": str(obj.get("id")),
        "properties": obj.get("properties") or {},
        "created_at": obj.get("createdAt"),
        "updated_at": obj.get("updatedAt"),
    }
    if "associations" in obj:
        out["associations"] = {
            kind: [str(r.get("id") or r.get("toObjectId")) for r in (value or {}).get("results", [])]
            for kind, value in obj["associations"].items()
        }
    return out


class HubSpot:
    name = "hubspot"

    def __init__(self, token: str | None = None, base_url: str | None = None, settings: HubSpotSettings | None = None,
                 guard: Guard | None = None):
        self.settings = settings if settings is not None else HubSpotSettings()  # embedders and tests
        token = token or self.settings.token
        if not token:
            raise TaskError(
                "HubSpot is not configured: pass token: \"{{ secret('HUBSPOT_TOKEN') }}\" or set HUB_HUBSPOT_TOKEN",
                retryable=False,
            )
        self.client = http_client(
            guard,
            base_url=(base_url or self.settings.base_url).rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=self.settings.timeout,
        )
        self._usage: dict[str, Any] = {}

    async def aclose(self) -> None:
        await self.client.aclose()

    def usage(self) -> dict[str, Any]:
        return dict(self._usage)

    # -- HTTP ------------------------------------------------------------------------------------

    def _note_usage(self, response: httpx.Response) -> None:
        for key, header in RATE_HEADERS.items():
            if header in response.headers:
                with contextlib.suppress(ValueError):
                    self._usage[key] = int(response.headers[header])

    def _wait_for(self, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying a 429; None when waiting inside the step makes no sense."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        if isinstance(body, dict) and body.get("policyName") == "DAILY":
            return None  # the daily quota: retrying in seconds will not help
        after = retry_after(response.headers)
        if after is not None:
            return after
        interval = response.headers.get(RATE_HEADERS["interval_ms"])
        return int(interval) / 1000 if interval and interval.isdigit() else 1.0

    async def request(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self.client.request(method, path, **kwargs)
            except httpx.TimeoutException:
                raise ConnectorError(f"HubSpot {method} {path} timed out", retryable=True) from None
            except httpx.TransportError as exc:
                raise ConnectorError(f"HubSpot {method} {path} failed: {type(exc).__name__}: {exc}", retryable=True) from None
            self._note_usage(response)
            if response.status_code < 400 or response.status_code in ok:
                return response
            wait = self._wait_for(response) if response.status_code == 429 else None
            if wait is not None and attempt < self.settings.max_retries and wait <= self.settings.max_wait:
                await asyncio.sleep(wait)
                attempt += 1
                continue
            raise self._error(method, path, response, wait)

    @staticmethod
    def _error(method: str, path: str, response: httpx.Response, wait: float | None) -> ConnectorError:
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:300]}
        message = body.get("message") if isinstance(body, dict) else str(body)
        category = body.get("category") or body.get("errorType") if isinstance(body, dict) else None
        hint = {401: " (check the token: token param or HUB_HUBSPOT_TOKEN)", 403: " (the private app lacks a scope)"}
        return ConnectorError(
            f"HubSpot {method} {path} answered {response.status_code} {category or ''}: {message}"
            + hint.get(response.status_code, ""),
            status=response.status_code,
            retry_after=wait,
            data={"category": category, "correlationId": body.get("correlationId") if isinstance(body, dict) else None},
        )

    # -- the interface -------------------------------------------------------------------------

    async def upsert(
        self, object_type: str, records: list[dict[str, Any]], id_property: str, batch_size: int, trace_id: str | None
    ) -> UpsertResult:
        out = UpsertResult()
        size = min(batch_size, BATCH_LIMIT)
        for index, record in enumerate(records):
            if record.get(id_property) in (None, ""):
                raise TaskError(f"records[{index}] has no {id_property!r}, the id property to upsert by", retryable=False)
        for start in range(0, len(records), size):
            inputs = []
            for offset, record in enumerate(records[start : start + size]):
                item: dict[str, Any] = {
                    "idProperty": id_property,
                    "id": str(record[id_property]),
                    "properties": {k: _value(v) for k, v in record.items()},
                }
                if trace_id:
                    item["objectWriteTraceId"] = f"{trace_id}:{start + offset}"
                inputs.append(item)
            response = await self.request(
                "POST", f"/crm/v3/objects/{object_type}/batch/upsert", json={"inputs": inputs}, ok=(207,)
            )
            body = response.json()
            for obj in body.get("results") or []:
                rec = _record(obj)
                rec["new"] = bool(obj.get("new"))
                out.results.append(rec)
                if rec["new"]:
                    out.created += 1
                else:
                    out.updated += 1
            out.errors.extend(
                {"message": e.get("message"), "category": e.get("category"), "context": e.get("context")}
                for e in body.get("errors") or []
            )
        return out

    async def search(
        self, object_type: str, groups: list[list[Filter]], properties: list[str], sorts: list[str], limit: int | None
    ) -> tuple[list[Record], int]:
        body: dict[str, Any] = {"filterGroups": [{"filters": [_hubspot_filter(f) for f in g]} for g in groups if g]}
        if properties:
            body["properties"] = properties
        if sorts:
            body["sorts"] = [
                {"propertyName": s.lstrip("+-"), "direction": "DESCENDING" if s.startswith("-") else "ASCENDING"}
                for s in sorts
            ]
        cap = min(limit or SEARCH_CAP, SEARCH_CAP)
        results: list[Record] = []
        total = 0
        after: str | None = None
        while len(results) < cap:
            page = dict(body, limit=min(SEARCH_PAGE, cap - len(results)))
            if after:
                page["after"] = after
            answer = (await self.request("POST", f"/crm/v3/objects/{object_type}/search", json=page)).json()
            total = int(answer.get("total") or 0)
            results.extend(_record(o) for o in answer.get("results") or [])
            after = ((answer.get("paging") or {}).get("next") or {}).get("after")
            if not after or not answer.get("results"):
                break
        return results[:cap], total

    async def get(self, object_type: str, record_id: str, id_property: str | None, properties: list[str]) -> Record | None:
        params: dict[str, Any] = {}
        if id_property:
            params["idProperty"] = id_property
        if properties:
            params["properties"] = ",".join(properties)
        response = await self.request("GET", f"/crm/v3/objects/{object_type}/{record_id}", params=params, ok=(404,))
        if response.status_code == 404:
            return None
        return _record(response.json())

    async def associate(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int | None) -> dict[str, Any]:
        if type_id is None:
            path = f"/crm/v4/objects/{from_type}/{from_id}/associations/default/{to_type}/{to_id}"
            answer = (await self.request("PUT", path)).json()
        else:
            path = f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}/{to_id}"
            answer = (
                await self.request("PUT", path, json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}])
            ).json()
        return {"from": {"type": from_type, "id": str(from_id)}, "to": {"type": to_type, "id": str(to_id)}, "status": answer.get("status", "COMPLETE")}

    async def add_note(
        self, object_type: str, record_id: str, body: str, timestamp: str | None, type_id: int | None
    ) -> Record:
        association = type_id or NOTE_TO.get(object_type)
        if association is None:
            raise TaskError(
                f"no default note association for {object_type!r}; set association_type_id", retryable=False
            )
        payload = {
            "properties": {
                "hs_note_body": body,
                "hs_timestamp": timestamp or dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            },
            "associations": [
                {
                    "to": {"id": str(record_id)},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": association}],
                }
            ],
        }
        return _record((await self.request("POST", "/crm/v3/objects/notes", json=payload)).json())


def _value(value: Any) -> Any:
    """HubSpot property values are strings; booleans are 'true'/'false', lists ';'-joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value)
