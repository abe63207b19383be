"""A local Notion API (version 2025-09-03) for tests, speaking the documented wire format.

Databases hold data sources; pages live in data sources (or under pages). Requests must carry
``Authorization: Bearer <token>`` and ``Notion-Version: 2025-09-03``. Lists paginate with
``has_more`` / ``next_cursor`` (``page_size`` at most 100). Errors are
``{"object": "error", "status", "code", "message", "request_id"}``; ``fail_next`` queues
failures (429 with ``Retry-After``, 500s...) for the next requests.

    fake = FakeNotion(token="secret")
    ds = fake.add_database("Tasks", {"Name": "title", "Done": "checkbox"})
    with serve(fake.app) as base_url: ...
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

VERSION = "2025-09-03"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"object": "error", "status": status, "code": code, "message": message, "request_id": str(uuid.uuid4())}
    return JSONResponse(body, status_code=status, headers=headers)


class Invalid(Exception):
    def __init__(self, message: str, status: int = 400, code: str = "validation_error"):
        super().__init__(message)
        self.status, self.code = status, code


def _rich(items: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise Invalid(f"{where} should be an array")
    out = []
    for item in items:
        content = (item.get("text") or {}).get("content") if isinstance(item, dict) else None
        if not isinstance(content, str):
            raise Invalid(f"{where}[].text.content should be a string")
        if len(content) > 2000:
            raise Invalid(f"{where}[].text.content.length should be ≤ 2000, instead was {len(content)}")
        out.append({"type": "text", "text": {"content": content, "link": None}, "plain_text": content, "href": None})
    return out


class FakeNotion:
    def __init__(self, token: str = "secret_test"):
        self.token = token
        self.databases: dict[str, dict[str, Any]] = {}
        self.data_sources: dict[str, dict[str, Any]] = {}
        self.pages: dict[str, dict[str, Any]] = {}
        self.children: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[dict[str, Any]] = []
        self._failures: list[tuple[int, str, str, dict[str, str]]] = []
        self.app = Starlette(
            routes=[
                Route("/v1/databases/{id}", self.get_database, methods=["GET"]),
                Route("/v1/data_sources/{id}", self.get_data_source, methods=["GET"]),
                Route("/v1/data_sources/{id}/query", self.query, methods=["POST"]),
                Route("/v1/pages", self.create_page, methods=["POST"]),
                Route("/v1/pages/{id}", self.page, methods=["GET", "PATCH"]),
                Route("/v1/blocks/{id}/children", self.block_children, methods=["GET", "PATCH"]),
            ]
        )

    # -- set-up ----------------------------------------------------------------------------------

    def add_database(self, title: str, schema: dict[str, str], sources: int = 1) -> str:
        """A database with ``sources`` data sources of the given ``{name: type}`` schema; the first's id."""
        db_id = str(uuid.uuid4())
        ids = []
        for n in range(sources):
            ds_id = str(uuid.uuid4())
            properties = {
                name: {"id": uuid.uuid4().hex[:4], "name": name, "type": kind, kind: {}} for name, kind in schema.items()
            }
            self.data_sources[ds_id] = {
                "object": "data_source",
                "id": ds_id,
                "title": [{"type": "text", "text": {"content": title}, "plain_text": title}],
                "name": f"{title} {n + 1}" if sources > 1 else title,
                "properties": properties,
                "parent": {"type": "database_id", "database_id": db_id},
            }
            ids.append(ds_id)
        self.databases[db_id] = {"object": "database", "id": db_id, "title": title, "data_sources": ids}
        return ids[0]

    def database_of(self, ds_id: str) -> str:
        return self.data_sources[ds_id]["parent"]["database_id"]

    def fail_next(self, status: int, code: str, message: str = "failure", headers: dict[str, str] | None = None, times: int = 1) -> None:
        self._failures.extend([(status, code, message, headers or {})] * times)

    def pages_in(self, ds_id: str) -> list[dict[str, Any]]:
        return [p for p in self.pages.values() if p["parent"].get("data_source_id") == ds_id and not p["in_trash"]]

    # -- plumbing --------------------------------------------------------------------------------

    async def _check(self, request: Request) -> JSONResponse | None:
        body = None
        if request.method in ("POST", "PATCH"):
            raw = await request.body()
            body = await request.json() if raw else {}
        self.requests.append({"method": request.method, "path": request.url.path, "query": dict(request.query_params), "body": body})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "unauthorized", "API token is invalid.")
        if request.headers.get("notion-version") != VERSION:
            return _error(400, "missing_version", f"Notion-Version header should be {VERSION}.")
        if self._failures:
            status, code, message, headers = self._failures.pop(0)
            return _error(status, code, message, headers)
        return None

    @staticmethod
    def _paginate(items: list[dict[str, Any]], cursor: str | None, size: Any) -> dict[str, Any]:
        size = int(size or 100)
        if size > 100:
            raise Invalid("page_size should be ≤ 100")
        start = 0
        if cursor:
            ids = [i["id"] for i in items]
            if cursor not in ids:
                raise Invalid("start_cursor is not valid")
            start = ids.index(cursor)
        chunk = items[start : start + size]
        more = start + size < len(items)
        return {"object": "list", "results": chunk, "has_more": more, "next_cursor": items[start + size]["id"] if more else None}

    # -- values ----------------------------------------------------------------------------------

    def _value(self, name: str, prop: dict[str, Any], value: Any) -> dict[str, Any]:
        kind = prop["type"]
        if not isinstance(value, dict) or kind not in value:
            raise Invalid(f"body.properties.{name}.{kind} should be defined, instead was `undefined`.")
        v = value[kind]
        where = f"body.properties.{name}.{kind}"
        if kind in ("title", "rich_text"):
            out: Any = _rich(v, where)
        elif kind == "number":
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise Invalid(f"{where} should be a number or `null`")
            out = v
        elif kind in ("select", "status"):
            if v is not None and not isinstance((v or {}).get("name"), str):
                raise Invalid(f"{where}.name should be a string")
            out = None if v is None else {"id": uuid.uuid4().hex[:4], "name": v["name"], "color": "default"}
        elif kind == "multi_select":
            out = [{"id": uuid.uuid4().hex[:4], "name": o["name"], "color": "default"} for o in v]
        elif kind == "date":
            if v is not None and not isinstance(v.get("start"), str):
                raise Invalid(f"{where}.start should be a string")
            out = None if v is None else {"start": v["start"], "end": v.get("end"), "time_zone": None}
        elif kind == "checkbox":
            if not isinstance(v, bool):
                raise Invalid(f"{where} should be a boolean")
            out = v
        elif kind in ("people", "relation"):
            out = [{"object": "user", "id": o["id"]} if kind == "people" else {"id": o["id"]} for o in v]
            if kind == "relation":
                for o in v:
                    if o["id"] not in self.pages:
                        raise Invalid(f"{where}: page {o['id']} does not exist")
        elif kind in ("url", "email", "phone_number") or kind == "files":
            out = v
        else:
            raise Invalid(f"{where}: {kind} properties cannot be written")
        return {"id": prop["id"], "type": kind, kind: out}

    @staticmethod
    def _empty(schema: dict[str, Any]) -> dict[str, Any]:
        """Every property of the schema, unset: a page object always carries them all."""
        empty: dict[str, Any] = {"title": [], "rich_text": [], "multi_select": [], "people": [], "relation": [],
                                 "files": [], "checkbox": False, "formula": {"type": "number", "number": None}}
        return {
            name: {"id": prop["id"], "type": prop["type"], prop["type"]: copy.deepcopy(empty.get(prop["type"]))}
            for name, prop in schema.items()
        }

    def _properties(self, schema: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, value in values.items():
            if name not in schema:
                raise Invalid(f"{name} is not a property that exists.")
            out[name] = self._value(name, schema[name], value)
        return out

    # -- routes ----------------------------------------------------------------------------------

    async def get_database(self, request: Request) -> JSONResponse:
        if (err := await self._check(request)) is not None:
            return err
        db = self.databases.get(request.path_params["id"])
        if db is None:
            return _error(404, "object_not_found", f"Could not find database with ID: {request.path_params['id']}.")
        sources = [{"id": i, "name": self.data_sources[i]["name"]} for i in db["data_sources"]]
        return JSONResponse({"object": "database", "id": db["id"], "title": [{"plain_text": db["title"]}], "data_sources": sources})

    async def get_data_source(self, request: Request) -> JSONResponse:
        if (err := await self._check(request)) is not None:
            return err
        ds = self.data_sources.get(request.path_params["id"])
        if ds is None:
            return _error(404, "object_not_found", f"Could not find data_source with ID: {request.path_params['id']}.")
        return JSONResponse(ds)

    async def create_page(self, request: Request) -> JSONResponse:
        if (err := await self._check(request)) is not None:
            return err
        body = self.requests[-1]["body"]
        parent = body.get("parent") or {}
        try:
            if "data_source_id" in parent:
                ds = self.data_sources.get(parent["data_source_id"])
                if ds is None:
                    return _error(404, "object_not_found", "Could not find data_source.")
                properties = self._empty(ds["properties"]) | self._properties(ds["properties"], body.get("properties") or {})
                stored_parent = {"type": "data_source_id", "data_source_id": ds["id"], "database_id": self.database_of(ds["id"])}
            elif "database_id" in parent:
                db = self.databases.get(parent["database_id"])
                if db is None:
                    return _error(404, "object_not_found", "Could not find database.")
                if len(db["data_sources"]) > 1:
                    raise Invalid("Databases with multiple data sources are not supported in this API version.")
                ds = self.data_sources[db["data_sources"][0]]
                properties = self._empty(ds["properties"]) | self._properties(ds["properties"], body.get("properties") or {})
                stored_parent = {"type": "data_source_id", "data_source_id": ds["id"], "database_id": db["id"]}
            elif "page_id" in parent:
                if parent["page_id"] not in self.pages:
                    return _error(404, "object_not_found", "Could not find page.")
                extra = set(body.get("properties") or {}) - {"title"}
                if extra:
                    raise Invalid(f"Invalid property for a page parent: {sorted(extra)}")
                title = (body.get("properties") or {}).get("title")
                properties = {"title": self._value("title", {"id": "title", "type": "title"}, title)} if title else {}
                stored_parent = {"type": "page_id", "page_id": parent["page_id"]}
            else:
                raise Invalid("body.parent should be defined")
            children = body.get("children") or []
            if len(children) > 100:
                raise Invalid(f"body.children.length should be ≤ 100, instead was {len(children)}")
        except Invalid as exc:
            return _error(exc.status, exc.code, str(exc))
        page_id = str(uuid.uuid4())
        now = _now()
        page = {
            "object": "page",
            "id": page_id,
            "created_time": now,
            "last_edited_time": now,
            "in_trash": False,
            "archived": False,
            "icon": body.get("icon"),
            "cover": body.get("cover"),
            "parent": stored_parent,
            "properties": properties,
            "url": f"https://www.notion.so/{page_id.replace('-', '')}",
        }
        self.pages[page_id] = page
        self.children[page_id] = [self._block(b) for b in children]
        return JSONResponse(page)

    async def page(self, request: Request) -> JSONResponse:
        if (err := await self._check(request)) is not None:
            return err
        page = self.pages.get(request.path_params["id"])
        if page is None:
            return _error(404, "object_not_found", f"Could not find page with ID: {request.path_params['id']}.")
        if request.method == "PATCH":
            body = self.requests[-1]["body"]
            schema = {name: {"id": p["id"], "type": p["type"]} for name, p in page["properties"].items()}
            if page["parent"].get("data_source_id"):
                schema = self.data_sources[page["parent"]["data_source_id"]]["properties"]
            try:
                page["properties"].update(self._properties(schema, body.get("properties") or {}))
            except Invalid as exc:
                return _error(exc.status, exc.code, str(exc))
            for key in ("icon", "cover"):
                if key in body:
                    page[key] = body[key]
            if "in_trash" in body:
                page["in_trash"] = page["archived"] = bool(body["in_trash"])
            page["last_edited_time"] = _now()
        return JSONResponse(page)

    def _block(self, block: dict[str, Any]) -> dict[str, Any]:
        kind = block.get("type")
        if not kind or kind not in block:
            raise Invalid("body.children[].type should be defined")
        stored = copy.deepcopy(block)
        stored.update({"object": "block", "id": str(uuid.uuid4()), "has_children": bool(block[kind].get("children"))})
        if "rich_text" in stored[kind]:
            stored[kind]["rich_text"] = _rich(stored[kind]["rich_text"], f"body.children[].{kind}.rich_text")
        return stored

    async def block_children(self, request: Request) -> JSONResponse:
        if (err := await self._check(request)) is not None:
            return err
        block_id = request.path_params["id"]
        if block_id not in self.children:
            return _error(404, "object_not_found", f"Could not find block with ID: {block_id}.")
        try:
            if request.method == "GET":
                q = request.query_params
                return JSONResponse(self._paginate(self.children[block_id], q.get("start_cursor"), q.get("page_size")))
            children = self.requests[-1]["body"].get("children") or []
            if len(children) > 100:
                raise Invalid(f"body.children.length should be ≤ 100, instead was {len(children)}")
            new = [self._block(b) for b in children]
        except Invalid as exc:
            return _error(exc.status, exc.code, str(exc))
        after = self.requests[-1]["body"].get("after")
        existing = self.children[block_id]
        at = next((i + 1 for i, b in enumerate(existing) if b["id"] == after), len(existing))
        existing[at:at] = new
        return JSONResponse({"object": "list", "results": new, "has_more": False, "next_cursor": None})

    # -- query -----------------------------------------------------------------------------------

    async def query(self, request: Request) -> JSONResponse:
        if (err := await self._check(request)) is not None:
            return err
        ds_id = request.path_params["id"]
        if ds_id not in self.data_sources:
            return _error(404, "object_not_found", f"Could not find data_source with ID: {ds_id}.")
        body = self.requests[-1]["body"] or {}
        try:
            pages = [p for p in self.pages_in(ds_id) if self._match(p, body.get("filter"))]
            for sort in reversed(body.get("sorts") or []):
                reverse = sort.get("direction") == "descending"
                if "timestamp" in sort:
                    pages.sort(key=lambda p, s=sort: p[s["timestamp"]], reverse=reverse)
                else:
                    pages.sort(key=lambda p, s=sort: _sort_key(p["properties"].get(s["property"])), reverse=reverse)
            return JSONResponse(self._paginate(pages, body.get("start_cursor"), body.get("page_size")) | {"type": "page_or_data_source", "page_or_data_source": {}})
        except Invalid as exc:
            return _error(exc.status, exc.code, str(exc))

    def _match(self, page: dict[str, Any], flt: dict[str, Any] | None) -> bool:
        if not flt:
            return True
        if "and" in flt:
            return all(self._match(page, f) for f in flt["and"])
        if "or" in flt:
            return any(self._match(page, f) for f in flt["or"])
        prop = page["properties"].get(flt.get("property"))
        kinds = [k for k in flt if k != "property"]
        if prop is None or len(kinds) != 1:
            raise Invalid(f"body.filter is not valid: {flt}")
        condition = flt[kinds[0]]
        value = _plain(prop)
        if "equals" in condition:
            return value == condition["equals"]
        if "does_not_equal" in condition:
            return value != condition["does_not_equal"]
        if "contains" in condition:
            return condition["contains"] in (value or [])
        if "is_empty" in condition:
            return value in (None, "", [])
        if "greater_than" in condition:
            return value is not None and value > condition["greater_than"]
        raise Invalid(f"body.filter condition not supported by the fake: {condition}")


def _plain(prop: dict[str, Any]) -> Any:
    kind = prop["type"]
    value = prop[kind]
    if kind in ("title", "rich_text"):
        return "".join(i["plain_text"] for i in value)
    if kind in ("select", "status"):
        return value and value["name"]
    if kind == "multi_select":
        return [o["name"] for o in value]
    if kind == "date":
        return value and value["start"]
    if kind in ("people", "relation"):
        return [o["id"] for o in value]
    return value


def _sort_key(prop: dict[str, Any] | None) -> Any:
    value = _plain(prop) if prop else None
    return (value is None, value if value is not None else 0)
