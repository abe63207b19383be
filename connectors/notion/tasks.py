"""The Notion task kinds: create_page, update_page, query, append_blocks."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from connectors.notion import properties as props
from connectors.notion.client import NotionParams, call, connect, paginate, resolve_data_source
from connectors.notion.settings import NotionSettings
from hub.core.errors import TaskError
from hub.core.tasks import TaskContext
from hub.net import Guard
from hub.net_settings import NetSettings

MAX_CHILDREN = 100  # blocks per append request


def _connect(ctx: TaskContext, params: NotionParams) -> Any:
    """A client configured by the process's settings (``HUB_NOTION_*``, the network guard's)."""
    guard = Guard.from_settings(ctx.settings.section(NetSettings))
    return connect(params, ctx.settings.section(NotionSettings), guard)


class DataSourceRef(NotionParams):
    data_source_id: str | None = Field(None, description="The data source (a table inside a database).")
    database_id: str | None = Field(None, description="A database; resolved to its data source.")
    data_source: str | None = Field(None, description="With database_id: the data source's name, when it has several.")


class CreatePageParams(DataSourceRef):
    parent_page_id: str | None = Field(None, description="Create under a page instead of in a data source.")
    properties: dict[str, Any] = Field(default_factory=dict, description="Property name -> plain value.")
    children: list[Any] = Field(default_factory=list, description="Content blocks (strings or shorthands).")
    icon: str | None = Field(None, description="An emoji or an image URL.")
    cover: str | None = Field(None, description="An image URL.")
    unique_by: str | None = Field(
        None,
        description="A property whose value identifies the page: when a page with the same value exists, "
        "it is updated instead (safe re-runs).",
    )

    @model_validator(mode="after")
    def _one_parent(self) -> CreatePageParams:
        given = [n for n in ("data_source_id", "database_id", "parent_page_id") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("give exactly one parent: data_source_id, database_id or parent_page_id")
        if self.unique_by and self.parent_page_id:
            raise ValueError("unique_by needs a data source parent")
        if self.unique_by and self.unique_by not in self.properties:
            raise ValueError(f"unique_by {self.unique_by!r} must be one of the properties given")
        return self


class CreatePage:
    """Create a page in a data source (or under a page). Output: the page's id, url and plain properties,
    and ``created`` (false when ``unique_by`` found the page and updated it)."""

    type = "notion.create_page"
    Params = CreatePageParams

    async def run(self, ctx: TaskContext, params: CreatePageParams) -> dict[str, Any]:
        async with _connect(ctx, params) as client:
            if params.parent_page_id:
                parent = {"type": "page_id", "page_id": params.parent_page_id}
                schema = None
            else:
                source = await resolve_data_source(client, params.data_source_id, params.database_id, params.data_source)
                parent = {"type": "data_source_id", "data_source_id": source["id"]}
                schema = source.get("properties") or {}
            properties = props.to_notion(params.properties, schema)
            if params.unique_by and schema is not None:
                condition = props.where_filter({params.unique_by: params.properties[params.unique_by]}, schema)
                found = await call(
                    client.data_sources.query(source["id"], filter=condition[0], page_size=1), "query"  # type: ignore[arg-type]
                )
                if found.get("results"):
                    page_id = found["results"][0]["id"]
                    body: dict[str, Any] = {"properties": properties}
                    if params.icon:
                        body["icon"] = props.icon(params.icon)
                    page = await call(client.pages.update(page_id, **body), "update page")  # type: ignore[arg-type]
                    ctx.log(f"notion: page {page_id} exists ({params.unique_by}), updated")
                    return {**props.page_summary(page), "created": False}
            body = {"parent": parent, "properties": properties}
            if params.children:
                blocks = [props.block(b) for b in params.children]
                body["children"] = blocks[:MAX_CHILDREN]
            if params.icon:
                body["icon"] = props.icon(params.icon)
            if params.cover:
                body["cover"] = props.cover(params.cover)
            page = await call(client.pages.create(**body), "create page")  # type: ignore[arg-type]
            if params.children and len(params.children) > MAX_CHILDREN:
                await _append(client, page["id"], blocks[MAX_CHILDREN:])
        ctx.log(f"notion: created page {page.get('id')}")
        return {**props.page_summary(page), "created": True}


class UpdatePageParams(NotionParams):
    page_id: str
    properties: dict[str, Any] = Field(default_factory=dict, description="Property name -> plain value.")
    icon: str | None = None
    cover: str | None = None
    in_trash: bool | None = Field(None, description="true moves the page to the trash, false restores it.")


class UpdatePage:
    """Update a page's properties (typed by the page's own schema), icon, cover or trash state."""

    type = "notion.update_page"
    Params = UpdatePageParams

    async def run(self, ctx: TaskContext, params: UpdatePageParams) -> dict[str, Any]:
        async with _connect(ctx, params) as client:
            body: dict[str, Any] = {}
            if params.properties:
                current = await call(client.pages.retrieve(params.page_id), "retrieve page")  # type: ignore[arg-type]
                schema = current.get("properties") or {}
                source_id = (current.get("parent") or {}).get("data_source_id")
                if source_id and any(name not in schema for name in params.properties):
                    source = await call(client.data_sources.retrieve(source_id), "retrieve data source")  # type: ignore[arg-type]
                    schema = source.get("properties") or schema
                body["properties"] = props.to_notion(params.properties, schema)
            if params.icon:
                body["icon"] = props.icon(params.icon)
            if params.cover:
                body["cover"] = props.cover(params.cover)
            if params.in_trash is not None:
                body["in_trash"] = params.in_trash
            if not body:
                raise TaskError("nothing to update: give properties, icon, cover or in_trash", retryable=False)
            page = await call(client.pages.update(params.page_id, **body), "update page")  # type: ignore[arg-type]
        return props.page_summary(page)


class QueryParams(DataSourceRef):
    filter: dict[str, Any] | None = Field(None, description="A Notion filter object.")
    where: dict[str, Any] = Field(default_factory=dict, description="Property -> value equality shorthands (and-ed).")
    sorts: list[Any] = Field(default_factory=list, description='"Name", "-Due", "-last_edited_time" or sort objects.')
    limit: int | None = Field(None, ge=1, description="At most this many pages (default: all).")
    page_size: int = Field(100, ge=1, le=100)
    raw: bool = Field(False, description="Also return Notion's property objects.")

    @model_validator(mode="after")
    def _source(self) -> QueryParams:
        if not (self.data_source_id or self.database_id):
            raise ValueError("give data_source_id (or database_id)")
        return self


class Query:
    """Query a data source, following pagination to the end. Output: ``{"pages": [...], "count": n}``."""

    type = "notion.query"
    Params = QueryParams

    async def run(self, ctx: TaskContext, params: QueryParams) -> dict[str, Any]:
        async with _connect(ctx, params) as client:
            source = await resolve_data_source(client, params.data_source_id, params.database_id, params.data_source)
            conditions = props.where_filter(params.where, source.get("properties") or {})
            if params.filter:
                conditions.insert(0, params.filter)
            query: dict[str, Any] = {}
            if len(conditions) == 1:
                query["filter"] = conditions[0]
            elif conditions:
                query["filter"] = {"and": conditions}
            if params.sorts:
                query["sorts"] = props.sorts(params.sorts)

            async def fetch(**kwargs: Any) -> Any:
                return await call(client.data_sources.query(source["id"], **query, **kwargs), "query")  # type: ignore[arg-type]

            results = await paginate(fetch, params.limit, params.page_size)
        pages = []
        for page in results:
            if page.get("object") != "page":
                continue
            summary = props.page_summary(page)
            if params.raw:
                summary["raw_properties"] = page.get("properties")
            pages.append(summary)
        return {"pages": pages, "count": len(pages), "data_source_id": source["id"]}


class AppendBlocksParams(NotionParams):
    block_id: str = Field(description="The page (or block) to append to.")
    blocks: list[Any] = Field(description="Strings (paragraphs), shorthands like {heading_2: Title}, or block objects.")
    after: str | None = Field(None, description="Insert after this child block instead of at the end.")


async def _append(client: Any, block_id: str, blocks: list[dict[str, Any]], after: str | None = None) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(blocks), MAX_CHILDREN):
        kwargs: dict[str, Any] = {"children": blocks[start : start + MAX_CHILDREN]}
        if after:
            kwargs["after"] = after
        answer = await call(client.blocks.children.append(block_id, **kwargs), "append blocks")
        new = [b["id"] for b in answer.get("results") or []]
        ids.extend(new)
        if after and new:
            after = new[-1]
    return ids


class AppendBlocks:
    """Append content to a page, 100 blocks per request. Output: ``{"block_ids": [...], "count": n}``."""

    type = "notion.append_blocks"
    Params = AppendBlocksParams

    async def run(self, ctx: TaskContext, params: AppendBlocksParams) -> dict[str, Any]:
        blocks = [props.block(b) for b in params.blocks]
        if not blocks:
            return {"block_ids": [], "count": 0}
        async with _connect(ctx, params) as client:
            ids = await _append(client, params.block_id, blocks, params.after)
        return {"block_ids": ids, "count": len(ids)}
