"""Plain values in, Notion property objects out — and back.

A flow writes ``properties: {Name: "Acme", Stage: "Won", Tags: [a, b], Due: "2024-05-01"}``;
the data source's schema says each property's type and :func:`to_notion` builds the object
Notion expects. :func:`from_notion` turns a page's property values back into plain values.
A value that already is a Notion property object (``{"select": {"name": "Won"}}``) passes as is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub.core.errors import TaskError

TEXT_LIMIT = 2000  # characters per rich text object
WRITABLE = {
    "title", "rich_text", "number", "select", "status", "multi_select", "date", "checkbox",
    "url", "email", "phone_number", "people", "relation", "files",
}  # fmt: skip


def rich_text(value: Any) -> list[dict[str, Any]]:
    if value is None or value == "":
        return []
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value  # already rich text objects
    text = str(value)
    return [
        {"type": "text", "text": {"content": text[i : i + TEXT_LIMIT]}} for i in range(0, len(text), TEXT_LIMIT)
    ]


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple | set):
        return list(value)
    return [value]


def _date(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return value
    if isinstance(value, dt.date | dt.datetime):
        return {"start": value.isoformat()}
    return {"start": str(value)}


def _number(name: str, value: Any) -> float | int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TaskError(f"property {name!r} is a number; got a boolean", retryable=False)
    if isinstance(value, int | float):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        raise TaskError(f"property {name!r} is a number; {value!r} is not one", retryable=False) from None
    return int(number) if number.is_integer() else number


def _checkbox(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "y", "1", "on", "x")
    return bool(value)


def _ids(value: Any) -> list[dict[str, str]]:
    return [{"id": v["id"] if isinstance(v, dict) else str(v)} for v in _as_list(value)]


def value_to_notion(name: str, kind: str, value: Any) -> dict[str, Any]:
    """One plain value as the property object of type ``kind``."""
    if isinstance(value, dict) and set(value) - {"id", "type"} == {kind}:
        return value  # already a Notion property object
    if kind not in WRITABLE:
        raise TaskError(f"property {name!r} is a {kind} property, which the API cannot write", retryable=False)
    if kind in ("title", "rich_text"):
        return {kind: rich_text(value)}
    if kind == "number":
        return {"number": _number(name, value)}
    if kind in ("select", "status"):
        return {kind: None if value in (None, "") else {"name": str(value)}}
    if kind == "multi_select":
        return {"multi_select": [{"name": str(v)} for v in _as_list(value)]}
    if kind == "date":
        return {"date": _date(value)}
    if kind == "checkbox":
        return {"checkbox": _checkbox(value)}
    if kind in ("url", "email", "phone_number"):
        return {kind: None if value in (None, "") else str(value)}
    if kind in ("people", "relation"):
        return {kind: _ids(value)}
    files = []
    for item in _as_list(value):
        if isinstance(item, dict):
            files.append(item)
        else:
            url = str(item)
            files.append({"name": url.rsplit("/", 1)[-1][:100] or url, "type": "external", "external": {"url": url}})
    return {"files": files}


def to_notion(values: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    """Plain values by property name -> Notion property values, guided by ``schema``.

    ``schema`` is a data source's (or a page's) ``properties`` object. Without one (a page whose
    parent is a page) only the title can be set, under the name ``title``.
    """
    if schema is None:
        unknown = [k for k in values if k != "title"]
        if unknown:
            raise TaskError(
                f"a page under a page has only a title; cannot set {unknown} (create it in a data source instead)",
                retryable=False,
            )
        return {"title": value_to_notion("title", "title", values.get("title"))} if "title" in values else {}
    out: dict[str, Any] = {}
    for name, value in values.items():
        prop = schema.get(name)
        if prop is None:
            known = ", ".join(sorted(schema))
            raise TaskError(f"the data source has no property {name!r} (known: {known})", retryable=False)
        out[name] = value_to_notion(name, prop["type"], value)
    return out


def plain_text(items: list[dict[str, Any]] | None) -> str:
    return "".join(item.get("plain_text") or (item.get("text") or {}).get("content", "") for item in items or [])


def _user(value: dict[str, Any] | None) -> str | None:
    return (value or {}).get("id")


def value_from_notion(prop: dict[str, Any]) -> Any:
    """A page property value as a plain value (text, number, name, list of names or ids...)."""
    kind = prop.get("type")
    value = prop.get(kind) if kind else None
    if kind in ("title", "rich_text"):
        return plain_text(value)
    if kind in ("select", "status"):
        return (value or {}).get("name")
    if kind == "multi_select":
        return [v.get("name") for v in value or []]
    if kind == "date":
        if not value:
            return None
        return value["start"] if not value.get("end") else {"start": value["start"], "end": value["end"]}
    if kind in ("people", "relation"):
        return [v.get("id") for v in value or []]
    if kind in ("created_by", "last_edited_by"):
        return _user(value)
    if kind == "files":
        return [(f.get("external") or f.get("file") or {}).get("url") for f in value or []]
    if kind == "formula":
        return (value or {}).get((value or {}).get("type"))
    if kind == "rollup":
        rollup = value or {}
        inner = rollup.get(rollup.get("type"))
        if rollup.get("type") == "array":
            return [value_from_notion(item) for item in inner or []]
        return inner
    if kind == "unique_id":
        if not value:
            return None
        return f"{value['prefix']}-{value['number']}" if value.get("prefix") else value.get("number")
    if kind == "verification":
        return (value or {}).get("state")
    return value


def from_notion(properties: dict[str, Any]) -> dict[str, Any]:
    return {name: value_from_notion(prop) for name, prop in (properties or {}).items()}


def page_summary(page: dict[str, Any]) -> dict[str, Any]:
    """What a flow usually wants of a page: ids, url, times and plain property values."""
    return {
        "id": page.get("id"),
        "url": page.get("url"),
        "created_time": page.get("created_time"),
        "last_edited_time": page.get("last_edited_time"),
        "in_trash": page.get("in_trash", page.get("archived", False)),
        "properties": from_notion(page.get("properties") or {}),
    }


# -- query filters and sorts -------------------------------------------------------------------

_EQUALS = {"title", "rich_text", "number", "checkbox", "select", "status", "date", "url", "email", "phone_number"}
_CONTAINS = {"multi_select", "people", "relation"}


def where_filter(where: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """``{Prop: value}`` equality shorthands as Notion filter conditions (to be and-ed)."""
    conditions = []
    for name, value in where.items():
        prop = schema.get(name)
        if prop is None:
            raise TaskError(f"where: the data source has no property {name!r} (known: {', '.join(sorted(schema))})", retryable=False)
        kind = prop["type"]
        if value is None:
            conditions.append({"property": name, kind: {"is_empty": True}})
        elif kind in _CONTAINS:
            for item in _as_list(value):
                conditions.append({"property": name, kind: {"contains": item}})
        elif kind in _EQUALS:
            if kind == "number":
                value = _number(name, value)
            elif kind == "checkbox":
                value = _checkbox(value)
            elif kind == "date":
                value = (_date(value) or {}).get("start")
            else:
                value = str(value)
            conditions.append({"property": name, kind: {"equals": value}})
        else:
            raise TaskError(f"where: cannot filter {kind} property {name!r} by equality; use filter", retryable=False)
    return conditions


def sorts(values: list[Any]) -> list[dict[str, Any]]:
    """``"Name"`` / ``"-Due"`` / ``"-last_edited_time"`` or raw sort objects."""
    out = []
    for value in values:
        if isinstance(value, dict):
            out.append(value)
            continue
        text = str(value)
        direction = "descending" if text.startswith("-") else "ascending"
        name = text.lstrip("+-")
        if name in ("created_time", "last_edited_time"):
            out.append({"timestamp": name, "direction": direction})
        else:
            out.append({"property": name, "direction": direction})
    return out


# -- blocks ------------------------------------------------------------------------------------

TEXT_BLOCKS = {
    "paragraph", "heading_1", "heading_2", "heading_3", "quote", "callout",
    "bulleted_list_item", "numbered_list_item", "to_do", "toggle", "code",
}  # fmt: skip


def block(value: Any) -> dict[str, Any]:
    """A block from a shorthand: ``"text"``, ``{heading_2: "Title"}``, ``{to_do: "x", checked: true}``,
    ``{code: "print(1)", language: python}``, ``{divider: true}``, ``{bookmark: url}``, or a block object."""
    if isinstance(value, str):
        return {"object": "block", "type": "paragraph", "paragraph": {"rich_text": rich_text(value)}}
    if not isinstance(value, dict):
        raise TaskError(f"cannot make a block of {value!r}", retryable=False)
    if "type" in value or value.get("object") == "block":
        return value
    kinds = [k for k in value if k in TEXT_BLOCKS or k in ("divider", "bookmark", "image", "embed")]
    if len(kinds) != 1:
        raise TaskError(f"a block shorthand needs one block type key; got {sorted(value)}", retryable=False)
    kind = kinds[0]
    content = value[kind]
    if isinstance(content, dict):
        return {"object": "block", "type": kind, kind: content}  # {paragraph: {rich_text: [...]}} as is
    if kind == "divider":
        return {"object": "block", "type": "divider", "divider": {}}
    if kind in ("bookmark", "embed"):
        return {"object": "block", "type": kind, kind: {"url": str(content)}}
    if kind == "image":
        return {"object": "block", "type": "image", "image": {"type": "external", "external": {"url": str(content)}}}
    body: dict[str, Any] = {"rich_text": rich_text(content)}
    if kind == "to_do":
        body["checked"] = bool(value.get("checked", False))
    if kind == "code":
        body["language"] = value.get("language", "plain text")
    if kind == "callout" and value.get("icon"):
        body["icon"] = {"type": "emoji", "emoji": value["icon"]}
    if value.get("children"):
        body["children"] = [block(child) for child in value["children"]]
    return {"object": "block", "type": kind, kind: body}


def icon(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    if value.startswith(("http://", "https://")):
        return {"type": "external", "external": {"url": value}}
    return {"type": "emoji", "emoji": value}


def cover(value: str | None) -> dict[str, Any] | None:
    return {"type": "external", "external": {"url": value}} if value else None
