"""``etl.extract``: read rows from SQL, a file or an HTTP API into a dataset artifact."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import Field, model_validator

from connectors.etl.dataset import DatasetWriter
from connectors.etl.sources import FileSource, HttpSource, SqlSource, file_batches, http_batches, sql_batches
from hub.core.tasks import Params, TaskContext


class ExtractParams(Params):
    sql: SqlSource | None = Field(None, description="Read a query or a table from any SQLAlchemy URL.")
    file: FileSource | None = Field(None, description="Read a CSV or JSON Lines file.")
    http: HttpSource | None = Field(None, description="Read a paginated HTTP JSON API.")
    batch_size: int = Field(1000, ge=1, le=100_000, description="Rows per batch held in memory.")
    limit: int | None = Field(None, ge=0, description="Stop after this many rows.")

    @model_validator(mode="after")
    def _one_source(self) -> ExtractParams:
        given = [name for name in ("sql", "file", "http") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one source: sql, file or http")
        return self


class Extract:
    """Read rows in batches into a dataset file; the output is a reference to it.

    Output: ``{"dataset": {"ref", "rows", "columns", "format"}, "rows": n, "duration_s": ...}``.
    """

    type = "etl.extract"
    Params = ExtractParams

    async def run(self, ctx: TaskContext, params: ExtractParams) -> dict[str, Any]:
        started = time.perf_counter()
        with DatasetWriter(ctx, ctx.task_id or "extract") as writer:
            if params.http is not None:
                async for batch in http_batches(params.http, params.batch_size):
                    if self._write(writer, batch, params.limit):
                        break
            else:
                await asyncio.to_thread(self._sync, writer, params)
        source = "sql" if params.sql else "file" if params.file else "http"
        ctx.log(f"extracted {writer.rows} rows from {source}")
        return {
            "dataset": writer.ref(),
            "rows": writer.rows,
            "source": source,
            "duration_s": round(time.perf_counter() - started, 3),
        }

    def _sync(self, writer: DatasetWriter, params: ExtractParams) -> None:
        batches = (
            sql_batches(params.sql, params.batch_size)
            if params.sql is not None
            else file_batches(params.file, params.batch_size)  # type: ignore[arg-type]
        )
        try:
            for batch in batches:
                if self._write(writer, batch, params.limit):
                    break
        finally:
            close = getattr(batches, "close", None)
            if close:
                close()

    @staticmethod
    def _write(writer: DatasetWriter, batch: list[dict[str, Any]], limit: int | None) -> bool:
        """Write a batch; True when the limit is reached."""
        if limit is not None:
            batch = batch[: max(0, limit - writer.rows)]
        writer.write(batch)
        return limit is not None and writer.rows >= limit
