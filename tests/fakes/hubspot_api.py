"""A local HubSpot CRM API (v3 objects, v4 associations) for tests, in HubSpot's wire format.

Requests need ``Authorization: Bearer <token>``. Every response carries the
``X-HubSpot-RateLimit-*`` headers. Batch upsert takes at most 100 inputs and answers 207 with
``errors`` when some fail; search pages with ``paging.next.after``; errors look like
``{"status": "error", "message", "correlationId", "category"}`` and a 429 adds
``errorType: RATE_LIMIT`` and ``policyName``. ``fail_next`` queues failures.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

UNIQUE = {"contacts": {"email"}, "companies": {"domain"}, "deals": {"deal_ref"}, "notes": set()}  # deal_ref: a custom unique property


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeHubSpot:
    def __init__(self, token: str = "pat-test"):
        self.token = token
        self.objects: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in UNIQUE}
        self.associations: set[tuple[str, str, str, str, int | None]] = set()
        self.requests: list[dict[str, Any]] = []
        self.invalid_properties: set[str] = set()
        self.remaining = 190
        self._ids = itertools.count(1001)
        self._failures: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self.app = Starlette(
            routes=[
                Route("/crm/v3/objects/{type}/batch/upsert", self.batch_upsert, methods=["POST"]),
                Route("/crm/v3/objects/{type}/search", self.search, methods=["POST"]),
                Route("/crm/v3/objects/notes", self.create_note, methods=["POST"]),
                Route("/crm/v3/objects/{type}/{id}", self.get, methods=["GET"]),
                Route("/crm/v4/objects/{from}/{from_id}/associations/default/{to}/{to_id}", self.associate_default, methods=["PUT"]),
                Route("/crm/v4/objects/{from}/{from_id}/associations/{to}/{to_id}", self.associate_labelled, methods=["PUT"]),
            ]
        )

    # -- set-up ----------------------------------------------------------------------------------

    def add(self, object_type: str, properties: dict[str, Any]) -> str:
        record_id = str(next(self._ids))
        now = _now()
        props = {k: str(v) for k, v in properties.items()} | {"hs_object_id": record_id, "createdate": now}
        self.objects[object_type][record_id] = {"id": record_id, "properties": props, "createdAt": now, "updatedAt": now, "archived": False}
        return record_id

    def rate_limit_next(self, times: int = 1, retry_after: str | None = "0", policy: str = "TEN_SECONDLY_ROLLING") -> None:
        body = {
            "status": "error",
            "message": f"You have reached your {policy.lower()} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
        }
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._failures.extend([(429, body, headers)] * times)

    def fail_next(self, status: int, category: str, message: str) -> None:
        self._failures.append((status, {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}, {}))

    # -- plumbing --------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        self.remaining = max(0, self.remaining - 1)
        return {
            "X-HubSpot-RateLimit-Max": "190",
            "X-HubSpot-RateLimit-Remaining": str(self.remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily": "500000",
            "X-HubSpot-RateLimit-Daily-Remaining": "499000",
        }

    def _json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=self._headers() | (headers or {}))

    def _err(self, status: int, category: str, message: str) -> JSONResponse:
        return self._json({"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}, status)

    async def _check(self, request: Request) -> JSONResponse | None:
        raw = await request.body()
        body = await request.json() if raw else None
        self.requests.append({"method": request.method, "path": request.url.path, "query": dict(request.query_params), "body": body})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._err(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
        if self._failures:
            status, fbody, headers = self._failures.pop(0)
            return self._json(fbody, status, headers)
        return None

    def _find(self, object_type: str, prop: str, value: str) -> dict[str, Any] | None:
        if prop in ("hs_object_id", "id"):
            return self.objects[object_type].get(value)
        return next((o for o in self.objects[object_type].values() if o["properties"].get(prop) == value), None)

    def _select(self, obj: dict[str, Any], properties: list[str] | None) -> dict[str, Any]:
        default = ["hs_object_id", "createdate", "email", "firstname", "lastname", "name", "domain", "dealname"]
        keep = properties or default
        return obj | {"properties": {k: v for k, v in obj["properties"].items() if k in keep}}

    # -- routes ----------------------------------------------------------------------------------

    async def batch_upsert(self, request: Request) -> JSONResponse:
        if (err := await self._check(request)) is not None:
            return err
        object_type = request.path_params["type"]
        inputs = (self.requests[-1]["body"] or {}).get("inputs") or []
        if len(inputs) > 100:
            return self._err(400, "VALIDATION_ERROR", f"Batch input size {len(inputs)} exceeds the limit of 100.")
        started = _now()
        results, errors = [], []
        for item in inputs:
            prop = item.get("idProperty")
            if prop not in UNIQUE.get(object_type, set()):
                return self._err(400, "VALIDATION_ERROR", f"{prop} is not a unique identifier property for {object_type}.")
            bad = sorted(set(item.get("properties") or {}) & self.invalid_properties)
            if bad:
                errors.append({"status": "error", "category": "VALIDATION_ERROR", "message": f'Property values were not valid: "{bad[0]}" does not exist', "context": {"propertyName": bad}})
                continue
            props = {k: str(v) for k, v in (item.get("properties") or {}).items()} | {prop: item["id"]}
            existing = self._find(object_type, prop, item["id"])
            if existing is None:
                record_id = self.add(object_type, props)
                obj, new = self.objects[object_type][record_id], True
            else:
                existing["properties"].update(props)
                existing["updatedAt"] = _now()
                obj, new = existing, False
            results.append(obj | {"new": new, "properties": dict(obj["properties"])})
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now()}
        if errors:
            body |= {"numErrors": len(errors), "errors": errors}
        return self._json(body, 207 if errors else 200)

    async def search(self, request: Request) -> JSONResponse:
        if (err := await self._check(request)) is not None:
            return err
        object_type = request.path_params["type"]
        body = self.requests[-1]["body"] or {}
        groups = body.get("filterGroups") or []
        limit = int(body.get("limit") or 10)
        if limit > 200 or len(groups) > 5 or any(len(g.get("filters") or []) > 6 for g in groups):
            return self._err(400, "VALIDATION_ERROR", "limit is at most 200; at most 5 filterGroups of 6 filters")
        matches = [o for o in self.objects[object_type].values() if not groups or any(self._match(o, g["filters"]) for g in groups)]
        for sort in reversed(body.get("sorts") or []):
            matches.sort(key=lambda o, s=sort: o["properties"].get(s["propertyName"]) or "", reverse=sort.get("direction") == "DESCENDING")
        start = int(body.get("after") or 0)
        page = matches[start : start + limit]
        answer: dict[str, Any] = {"total": len(matches), "results": [self._select(o, body.get("properties")) for o in page]}
        if start + limit < len(matches):
            answer["paging"] = {"next": {"after": str(start + limit), "link": "?after=" + str(start + limit)}}
        return self._json(answer)

    @staticmethod
    def _match(obj: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
        return all(_test(obj["properties"].get(f["propertyName"]), f) for f in filters)

    async def get(self, request: Request) -> JSONResponse:
        if (err := await self._check(request)) is not None:
            return err
        object_type, key = request.path_params["type"], request.path_params["id"]
        prop = request.query_params.get("idProperty") or "hs_object_id"
        obj = self._find(object_type, prop, key)
        if obj is None:
            return self._err(404, "OBJECT_NOT_FOUND", f"Object not found. objectId are usually numeric. ({key})")
        props = request.query_params.get("properties")
        return self._json(self._select(obj, props.split(",") if props else None))

    async def _associate(self, request: Request, type_id: int | None) -> JSONResponse:
        p = request.path_params
        for kind, rid in ((p["from"], p["from_id"]), (p["to"], p["to_id"])):
            if rid not in self.objects.get(kind, {}):
                return self._err(404, "OBJECT_NOT_FOUND", f"No {kind} with ID {rid} exists")
        self.associations.add((p["from"], p["from_id"], p["to"], p["to_id"], type_id))
        return self._json({"status": "COMPLETE", "results": [{"from": {"id": p["from_id"]}, "to": {"id": p["to_id"]}, "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id or 1}}], "startedAt": _now(), "completedAt": _now()})

    async def associate_default(self, request: Request) -> JSONResponse:
        if (err := await self._check(request)) is not None:
            return err
        return await self._associate(request, None)

    async def associate_labelled(self, request: Request) -> JSONResponse:
        if (err := await self._check(request)) is not None:
            return err
        body = self.requests[-1]["body"]
        if not isinstance(body, list) or not body or "associationTypeId" not in body[0]:
            return self._err(400, "VALIDATION_ERROR", "body must be a list of association types")
        return await self._associate(request, int(body[0]["associationTypeId"]))

    async def create_note(self, request: Request) -> JSONResponse:
        if (err := await self._check(request)) is not None:
            return err
        body = self.requests[-1]["body"] or {}
        props = body.get("properties") or {}
        if "hs_timestamp" not in props:
            return self._err(400, "VALIDATION_ERROR", "hs_timestamp is required")
        note_id = self.add("notes", props)
        for assoc in body.get("associations") or []:
            self.associations.add(("notes", note_id, "?", assoc["to"]["id"], assoc["types"][0]["associationTypeId"]))
        return self._json(self.objects["notes"][note_id], 201)


def _test(value: str | None, f: dict[str, Any]) -> bool:
    op, want = f["operator"], f.get("value")
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if op == "IN":
        return value in f.get("values", [])
    if value is None:
        return op == "NEQ"
    if op in ("EQ", "NEQ"):
        return (value.lower() == str(want).lower()) == (op == "EQ")
    if op == "CONTAINS_TOKEN":
        return str(want).lower().strip("*") in value.lower()
    number, bound = float(value), float(want)
    return {"GT": number > bound, "GTE": number >= bound, "LT": number < bound, "LTE": number <= bound}[op]
