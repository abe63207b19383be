"""``etl.load``: write a dataset into a SQL table (one transaction) or a CSV / JSON Lines file."""

from __future__ import annotations

import asyncio
import csv
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError

from connectors.etl import sqlload
from connectors.etl.dataset import dumps, input_batches
from connectors.etl.sources import file_format, open_engine, safe_url
from hub.core.errors import ConnectorError, TaskError
from hub.core.tasks import Params, TaskContext

Row = dict[str, Any]
REJECTED_SAMPLE = 20


class SqlTarget(Params):
    url: str = Field(description="SQLAlchemy URL of the target database (use secret()).")
    table: str = Field(description="Target table, optionally schema.table.")
    mode: Literal["insert", "upsert", "replace"] = Field(
        "insert", description="insert; upsert on key; replace = delete every row first (same transaction)."
    )
    key: list[str] | None = Field(None, description="Key columns for upsert (and the primary key when creating).")
    create: bool = Field(False, description="Create the table from the data when it does not exist.")
    extra_columns: Literal["error", "ignore"] = Field(
        "error", description="What to do with row columns the table does not have."
    )

    @model_validator(mode="after")
    def _key_for_upsert(self) -> SqlTarget:
        if self.mode == "upsert" and not self.key:
            raise ValueError("mode upsert needs key: the column(s) that identify a row")
        return self


class FileTarget(Params):
    path: str
    format: Literal["csv", "jsonl"] | None = Field(None, description="Default: from the file suffix.")
    mode: Literal["overwrite", "append"] = "overwrite"
    columns: list[str] | None = Field(None, description="CSV columns and their order (default: the dataset's).")
    delimiter: str = ","


class LoadParams(Params):
    dataset: Any = Field(None, description="An ETL step's dataset output, e.g. {{ outputs.transform.dataset }}.")
    rows: list[dict[str, Any]] | None = Field(None, description="Rows given inline (small data).")
    sql: SqlTarget | None = None
    file: FileTarget | None = None
    batch_size: int = Field(1000, ge=1, le=100_000)
    max_rejected: int = Field(
        0, ge=0, description="Rows that may be rejected (bad values, constraint errors) before the load fails and rolls back."
    )

    @model_validator(mode="after")
    def _one_target(self) -> LoadParams:
        if (self.sql is None) == (self.file is None):
            raise ValueError("give exactly one target: sql or file")
        return self


class _Rejections:
    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0
        self.sample: list[Row] = []

    def add(self, row: Row, reason: str) -> None:
        self.count += 1
        if len(self.sample) < REJECTED_SAMPLE:
            self.sample.append({"row": row, "reason": reason})
        if self.count > self.limit:
            raise TaskError(
                f"{self.count} rows rejected, more than max_rejected={self.limit} (nothing was committed); "
                f"first: {self.sample[0]['reason']}",
                retryable=False,
                data={"rejected_sample": self.sample},
            )

    def output(self) -> dict[str, Any]:
        return {"rows": self.count, "sample": self.sample}


def _db_reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return f"{type(orig or exc).__name__}: {str(orig or exc).splitlines()[0]}"


class Load:
    """Write rows in batches. SQL loads run in one transaction: all rows or none."""

    type = "etl.load"
    Params = LoadParams

    async def run(self, ctx: TaskContext, params: LoadParams) -> dict[str, Any]:
        return await asyncio.to_thread(self._run, ctx, params)

    def _run(self, ctx: TaskContext, params: LoadParams) -> dict[str, Any]:
        started = time.perf_counter()
        batches = input_batches(ctx, params.dataset, params.rows, params.batch_size)
        rejections = _Rejections(params.max_rejected)
        declared = params.dataset.get("columns") if isinstance(params.dataset, dict) else None
        if params.sql is not None:
            written, target = self._sql(params.sql, batches, rejections, declared)
        else:
            assert params.file is not None
            written, target = self._file(params.file, batches, declared, params.rows)
        ctx.log(f"loaded {written} rows into {target}")
        return {
            "rows": written,
            "target": target,
            "rejected": rejections.output(),
            "duration_s": round(time.perf_counter() - started, 3),
        }

    # -- SQL ---------------------------------------------------------------------------------

    def _sql(
        self, target: SqlTarget, batches: Iterator[list[Row]], rejections: _Rejections, declared: list[str] | None
    ) -> tuple[int, str]:
        engine = open_engine(target.url)
        sqlload.sqlite_transactions(engine)
        where = f"{target.table} at {safe_url(target.url)}"
        written = 0
        try:
            with engine.begin() as conn:
                first = next(batches, [])
                table = sqlload.reflect(conn, target.table)
                if table is None:
                    if not target.create:
                        raise TaskError(
                            f"table {target.table!r} does not exist; create it or set create: true", retryable=False
                        )
                    columns = list(dict.fromkeys([*(declared or []), *(k for r in first for k in r)]))
                    if not columns:
                        raise TaskError("cannot create a table from an empty dataset", retryable=False)
                    table = sqlload.create_table(conn, target.table, columns, first, target.key or [])
                self._check_key(table, target)
                if target.mode == "replace":
                    conn.execute(table.delete())
                fns = sqlload.coercers(table)
                known = set(fns)
                for batch in itertools.chain([first], batches):
                    rows = self._prepare(batch, known, fns, target, rejections)
                    written += self._write_sql(conn, table, target, rows, rejections)
        except TaskError:
            raise
        except (DBAPIError, StatementError) as exc:
            raise ConnectorError(f"SQL load into {where} failed: {_db_reason(exc)}") from None
        except SQLAlchemyError as exc:
            raise ConnectorError(f"SQL load into {where} failed: {exc}") from None
        finally:
            engine.dispose()
        return written, target.table

    @staticmethod
    def _check_key(table: Table, target: SqlTarget) -> None:
        missing = [k for k in target.key or [] if k not in table.c]
        if missing:
            raise TaskError(f"key column(s) {missing} are not in table {target.table!r}", retryable=False)

    @staticmethod
    def _prepare(
        batch: list[Row], known: set[str], fns: dict[str, Any], target: SqlTarget, rejections: _Rejections
    ) -> list[Row]:
        rows: list[Row] = []
        for row in batch:
            extra = [k for k in row if k not in known]
            if extra:
                if target.extra_columns == "error":
                    raise TaskError(
                        f"column(s) {extra} are not in table {target.table!r}; drop them in etl.transform "
                        "or set extra_columns: ignore",
                        retryable=False,
                    )
                row = {k: v for k, v in row.items() if k in known}
            if target.mode == "upsert" and any(row.get(k) is None for k in target.key or []):
                rejections.add(row, f"key {target.key} is missing or null")
                continue
            try:
                rows.append(sqlload.coerce_row(row, fns))
            except ValueError as exc:
                rejections.add(row, str(exc))
        return rows

    def _write_sql(
        self, conn: Connection, table: Table, target: SqlTarget, rows: list[Row], rejections: _Rejections
    ) -> int:
        written = 0
        # executemany needs the same columns in every row: group rows by their column set
        groups: dict[tuple[str, ...], list[Row]] = {}
        for row in rows:
            groups.setdefault(tuple(row), []).append(row)
        for columns, group in groups.items():
            try:
                with conn.begin_nested():
                    self._execute(conn, table, target, list(columns), group)
                written += len(group)
            except (DBAPIError, StatementError):
                # find the bad rows one by one, each in its own savepoint
                for row in group:
                    try:
                        with conn.begin_nested():
                            self._execute(conn, table, target, list(columns), [row])
                        written += 1
                    except (DBAPIError, StatementError) as exc:
                        rejections.add(row, _db_reason(exc))
        return written

    @staticmethod
    def _execute(conn: Connection, table: Table, target: SqlTarget, columns: list[str], rows: list[Row]) -> None:
        if target.mode != "upsert":
            conn.execute(table.insert(), rows)
            return
        key = target.key or []
        stmt = sqlload.upsert_statement(table, conn.dialect.name, key, columns)
        if stmt is None:
            sqlload.upsert_generic(conn, table, key, rows)
        else:
            conn.execute(stmt, rows)

    # -- files -------------------------------------------------------------------------------

    def _file(
        self, target: FileTarget, batches: Iterator[list[Row]], declared: list[str] | None, inline: list[Row] | None
    ) -> tuple[int, str]:
        path = Path(target.path).expanduser()
        fmt = file_format(target.path, target.format)
        path.parent.mkdir(parents=True, exist_ok=True)
        appending = target.mode == "append" and path.exists() and path.stat().st_size > 0
        out_path = path if target.mode == "append" else path.with_name(f".{path.name}.{os.getpid()}.tmp")
        written = 0
        try:
            with out_path.open("a" if target.mode == "append" else "w", encoding="utf-8", newline="") as fh:
                if fmt == "jsonl":
                    for batch in batches:
                        if batch:
                            fh.write("\n".join(dumps(r) for r in batch) + "\n")
                            written += len(batch)
                else:
                    first = next(batches, [])
                    columns = target.columns or declared
                    if columns is None:
                        source = inline if inline is not None else first
                        columns = list(dict.fromkeys(k for r in source for k in r))
                    if appending:
                        with path.open(encoding="utf-8", newline="") as existing:
                            header = next(csv.reader(existing, delimiter=target.delimiter), None)
                        if header and not target.columns:
                            columns = header
                    writer = csv.DictWriter(fh, fieldnames=columns, delimiter=target.delimiter, extrasaction="ignore")
                    if not appending:
                        writer.writeheader()
                    for batch in itertools.chain([first], batches):
                        writer.writerows(
                            {k: (dumps(v) if isinstance(v, dict | list) else v) for k, v in r.items()} for r in batch
                        )
                        written += len(batch)
        except BaseException as exc:
            if out_path != path:
                out_path.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise TaskError(f"cannot write {str(path)!r}: {exc}", retryable=False) from None
            raise
        if out_path != path:
            os.replace(out_path, path)
        return written, str(path)
