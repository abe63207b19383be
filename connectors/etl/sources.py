"""Where ``etl.extract`` reads rows from: SQL, CSV / JSON Lines files, paginated HTTP JSON APIs.

Each source yields batches of rows (lists of dicts); nothing holds a whole table.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import Field, model_validator
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from hub.core.durations import Duration
from hub.core.errors import ConnectorError, TaskError
from hub.core.tasks import Params
from hub.net import http_client, redact_url, retry_after

Row = dict[str, Any]

# -- SQL ---------------------------------------------------------------------------------------


class SqlSource(Params):
    url: str = Field(description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db (use secret()).")
    query: str | None = Field(None, description="A SELECT; bind parameters as :name, values in params.")
    table: str | None = Field(None, description="Read a whole table instead of a query.")
    params: dict[str, Any] = Field(default_factory=dict, description="Bind parameters for the query.")

    @model_validator(mode="after")
    def _query_or_table(self) -> SqlSource:
        if (self.query is None) == (self.table is None):
            raise ValueError("give exactly one of query and table")
        return self


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid url>"


def open_engine(url: str) -> Any:
    try:
        return create_engine(url, pool_pre_ping=False)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise TaskError(f"cannot use database URL {safe_url(url)}: {exc}", retryable=False) from None


def sql_batches(source: SqlSource, batch_size: int) -> Iterator[list[Row]]:
    """Stream a query with a server-side cursor where the driver has one."""
    engine = open_engine(source.url)
    try:
        if source.table is not None:
            from sqlalchemy import MetaData, Table, select

            try:
                schema, _, name = source.table.rpartition(".")
                table = Table(name, MetaData(), schema=schema or None, autoload_with=engine)
            except SQLAlchemyError as exc:
                raise TaskError(f"cannot read table {source.table!r}: {exc}", retryable=False) from None
            statement: Any = select(table)
        else:
            statement = text(source.query or "")
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(
                statement, source.params
            )
            columns = list(result.keys())
            for partition in result.partitions(batch_size):
                yield [dict(zip(columns, row, strict=True)) for row in partition]
    except SQLAlchemyError as exc:
        raise ConnectorError(f"SQL extract from {safe_url(source.url)} failed: {exc.__class__.__name__}: {exc}") from None
    finally:
        engine.dispose()


# -- files -------------------------------------------------------------------------------------


class FileSource(Params):
    path: str = Field(description="File path (relative paths are relative to the working directory).")
    format: Literal["csv", "jsonl"] | None = Field(None, description="Default: from the file suffix.")
    delimiter: str = ","
    encoding: str = "utf-8"
    columns: list[str] | None = Field(None, description="CSV column names when the file has no header row.")


def file_format(path: str, given: str | None) -> str:
    if given:
        return given
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise TaskError(f"cannot tell the format of {path!r} from its suffix; set format: csv or jsonl", retryable=False)


def file_batches(source: FileSource, batch_size: int) -> Iterator[list[Row]]:
    path = Path(source.path).expanduser()
    if not path.is_file():
        raise TaskError(f"file {str(path)!r} does not exist", retryable=False)
    fmt = file_format(source.path, source.format)
    with path.open(encoding=source.encoding, newline="") as fh:
        rows: Iterator[Row]
        if fmt == "csv":
            delimiter = "\t" if path.suffix.lower() == ".tsv" and source.delimiter == "," else source.delimiter
            rows = csv.DictReader(fh, fieldnames=source.columns, delimiter=delimiter)
        else:
            rows = _jsonl_rows(fh, str(path))
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def _jsonl_rows(fh: Any, name: str) -> Iterator[Row]:
    for number, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise TaskError(f"{name}:{number}: not valid JSON: {exc}", retryable=False) from None
        if not isinstance(value, dict):
            raise TaskError(f"{name}:{number}: each line must be a JSON object", retryable=False)
        yield value


# -- HTTP --------------------------------------------------------------------------------------


class Pagination(Params):
    type: Literal["none", "cursor", "page", "offset", "next_url", "link_header"] = "none"
    param: str | None = Field(None, description="Query parameter carrying the cursor, page number or offset.")
    cursor_path: str | None = Field(None, description="cursor: dotted path of the next cursor in the body.")
    next_path: str | None = Field(None, description="next_url: dotted path of the next page's URL.")
    start: int | None = Field(None, description="page: first page number (1); offset: first offset (0).")
    size_param: str | None = Field(None, description="Query parameter carrying the page size.")
    size: int | None = Field(None, description="Page size; a shorter page ends the pagination.")
    max_pages: int = Field(10_000, ge=1)

    @model_validator(mode="after")
    def _needs(self) -> Pagination:
        if self.type in ("cursor", "page", "offset") and not self.param:
            raise ValueError(f"pagination type {self.type} needs param (the query parameter to set)")
        if self.type == "cursor" and not self.cursor_path:
            raise ValueError("pagination type cursor needs cursor_path (where the next cursor is in the body)")
        if self.type == "next_url" and not self.next_path:
            raise ValueError("pagination type next_url needs next_path")
        return self


class HttpSource(Params):
    url: str
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict)
    json_: Any = Field(None, alias="json")
    records_path: str | None = Field(
        None, description="Dotted path of the list of records in each page (default: the body, or data/results/items)."
    )
    pagination: Pagination = Field(default_factory=Pagination)
    timeout: Duration = 30.0
    max_retries: int = Field(3, ge=0, description="Retries of one page on 429/5xx/timeouts.")
    max_wait: Duration = Field(60.0, description="Longest Retry-After honoured inside the step.")


def dig(body: Any, path: str | None) -> Any:
    if not path:
        return body
    value = body
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _records(body: Any, path: str | None) -> list[Any]:
    if path:
        found = dig(body, path)
        if found is None:
            return []
        if not isinstance(found, list):
            raise TaskError(f"records_path {path!r} is not a list in the response", retryable=False)
        return found
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("data", "results", "items", "records", "rows"):
            if isinstance(body.get(key), list):
                return list(body[key])
    raise TaskError("cannot find the records in the response; set records_path", retryable=False)


async def _fetch(client: httpx.AsyncClient, source: HttpSource, url: str, query: dict[str, Any]) -> httpx.Response:
    attempt = 0
    while True:
        error: ConnectorError
        try:
            response = await client.request(
                source.method, url, params=query or None, json=source.json_, headers=source.headers
            )
        except httpx.TimeoutException:
            error = ConnectorError(f"{source.method} {redact_url(url)} timed out", retryable=True)
        except httpx.HTTPError as exc:
            error = ConnectorError(f"{source.method} {redact_url(url)} failed: {exc}", retryable=True)
        else:
            if response.status_code < 400:
                return response
            error = ConnectorError(
                f"{source.method} {redact_url(url)} answered {response.status_code}: {response.text[:300]}",
                status=response.status_code,
                retry_after=retry_after(response.headers),
            )
        if not error.retryable or attempt >= source.max_retries:
            raise error
        wait = error.retry_after if error.retry_after is not None else min(0.5 * 2**attempt, 8.0)
        if wait > source.max_wait:
            raise error
        await asyncio.sleep(wait)
        attempt += 1


def _next_link(response: httpx.Response) -> str | None:
    link = response.links.get("next")
    return link.get("url") if link else None


async def http_batches(source: HttpSource, batch_size: int) -> AsyncIterator[list[Row]]:
    page = source.pagination
    url: str | None = source.url
    query = dict(source.query)
    if page.size_param and page.size:
        query[page.size_param] = page.size
    position = page.start if page.start is not None else (1 if page.type == "page" else 0)
    if page.type in ("page", "offset"):
        query[page.param or ""] = position
    async with http_client(timeout=source.timeout, follow_redirects=True) as client:
        for _ in range(page.max_pages):
            assert url is not None
            response = await _fetch(client, source, url, query)
            try:
                body = response.json()
            except ValueError:
                raise ConnectorError(f"{redact_url(url)} did not answer JSON", status=response.status_code, retryable=False) from None
            records = _records(body, source.records_path)
            rows = [r if isinstance(r, dict) else {"value": r} for r in records]
            for start in range(0, len(rows), batch_size):
                yield rows[start : start + batch_size]
            if not records or page.type == "none":
                return
            if page.size and len(records) < page.size and page.type in ("page", "offset"):
                return
            if page.type == "cursor":
                cursor = dig(body, page.cursor_path)
                if cursor in (None, "", False):
                    return
                query[page.param or ""] = cursor
            elif page.type == "page":
                position += 1
                query[page.param or ""] = position
            elif page.type == "offset":
                position += len(records)
                query[page.param or ""] = position
            else:
                url = dig(body, page.next_path) if page.type == "next_url" else _next_link(response)
                if not url:
                    return
                url = str(response.url.join(url))
                query = {}
        raise TaskError(f"stopped after max_pages={page.max_pages} pages; raise it if that is expected", retryable=False)
