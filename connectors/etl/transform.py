"""``etl.transform``: reshape a dataset batch by batch through a list of steps.

Steps run in order; each is one operation::

    steps:
      - rename: {Email: email}
      - cast: {amount: float, signed_up: date}
      - filter: "row.amount > 0"                 # an expression, no braces: the flow does not render it
      - derive: {domain: "row.email | domain", total: "row.amount * 1.2"}
      - dedupe: [email]
      - python: mypkg.clean:fix_row              # fn(row) -> row | None ; mode: batch -> fn(rows) -> rows

A row that fails a step (a cast that does not parse, an expression that errors, a python function
that raises) is rejected with its reason; a row a ``filter`` drops is not an error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import inspect
import json
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, model_validator

from connectors.etl.dataset import DatasetWriter, dumps, input_batches
from connectors.etl.sqlload import to_bool
from hub.core.errors import TaskError
from hub.core.host import EXPRESSIONS, FUNCTIONS, lookup
from hub.core.tasks import Params, TaskContext, TaskSettings

Row = dict[str, Any]
CastType = Literal["int", "float", "str", "bool", "date", "datetime", "json"]
OPERATIONS = ("rename", "select", "drop", "cast", "filter", "derive", "fill", "dedupe", "python")
REJECTED_SAMPLE = 20


class Step(Params):
    rename: dict[str, str] | None = Field(None, description="old name -> new name")
    select: list[str] | None = Field(None, description="Keep these columns, in this order.")
    drop: list[str] | None = Field(None, description="Remove these columns.")
    cast: dict[str, CastType] | None = Field(None, description="column -> int|float|str|bool|date|datetime|json")
    filter: str | None = Field(None, description="Keep rows where this expression (with `row`) is true.")
    derive: dict[str, str] | None = Field(None, description="column -> expression with `row` in scope")
    fill: dict[str, Any] | None = Field(None, description="column -> value used when the column is missing or null")
    dedupe: list[str] | None = Field(None, description="Keep the first row of each key ([] = the whole row).")
    python: str | None = Field(None, description="'package.module:function' called per row or per batch.")
    mode: Literal["row", "batch"] = Field("row", description="python only: call per row or per batch.")

    @model_validator(mode="after")
    def _one_operation(self) -> Step:
        given = [name for name in OPERATIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"each step has exactly one operation of {', '.join(OPERATIONS)}; got {given or 'none'}")
        if self.mode != "row" and self.python is None:
            raise ValueError("mode applies to python steps only")
        return self

    @property
    def operation(self) -> str:
        return next(name for name in OPERATIONS if getattr(self, name) is not None)


class TransformParams(Params):
    dataset: Any = Field(None, description="An ETL step's dataset output, e.g. {{ outputs.extract.dataset }}.")
    rows: list[dict[str, Any]] | None = Field(None, description="Rows given inline (small data).")
    steps: list[Step] = Field(description="Operations applied in order to every row.")
    batch_size: int = Field(1000, ge=1, le=100_000)
    max_rejected: int | None = Field(None, ge=0, description="Fail the step when more rows than this are rejected.")


class Rejected(Exception):
    """A row failed a step; the message is the reason."""


# -- casts -------------------------------------------------------------------------------------

def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    text = str(value).strip().replace("_", "")
    try:
        return int(text)
    except ValueError:
        number = float(text)
        if not number.is_integer():
            raise ValueError(f"{value!r} is not a whole number") from None
        return int(number)


def _to_date(value: Any) -> str:
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None


def _to_datetime(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat()
    try:
        return dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00")).isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO date-time") from None


def _to_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


CASTS: dict[str, Callable[[Any], Any]] = {
    "int": _to_int,
    "float": lambda v: float(str(v).strip()) if not isinstance(v, int | float) else float(v),
    "str": lambda v: v if isinstance(v, str) else dumps(v) if isinstance(v, dict | list) else str(v),
    "bool": to_bool,
    "date": _to_date,
    "datetime": _to_datetime,
    "json": _to_json,
}


# -- the pipeline ------------------------------------------------------------------------------


class Pipeline:
    """The compiled steps; ``apply`` maps a batch to (kept rows, rejected rows)."""

    def __init__(self, steps: list[Step], loop: asyncio.AbstractEventLoop | None, settings: TaskSettings):
        self.steps = steps
        self.loop = loop
        self.filtered = 0
        self._compiled: dict[int, Any] = {}
        self._seen: dict[int, set[bytes]] = {}
        exprs = self._exprs = lookup(EXPRESSIONS)
        functions = lookup(FUNCTIONS)
        for index, step in enumerate(steps):
            try:
                if step.filter is not None:
                    self._compiled[index] = exprs.compile_condition(step.filter)
                elif step.derive is not None:
                    self._compiled[index] = {k: exprs.compile_condition(v) for k, v in step.derive.items()}
                elif step.python is not None:
                    self._compiled[index] = functions(step.python, settings)
                elif step.dedupe is not None:
                    self._seen[index] = set()
            except TaskError as exc:
                raise TaskError(f"steps[{index}]: {exc}", retryable=False) from None
            except Exception as exc:
                raise TaskError(f"steps[{index}] ({step.operation}): {exc}", retryable=False) from None

    def apply(self, batch: list[Row]) -> tuple[list[Row], list[Row]]:
        rejected: list[Row] = []
        rows = batch
        for index, step in enumerate(self.steps):
            if step.python is not None and step.mode == "batch":
                rows = self._call_batch(index, step, rows)
                continue
            kept: list[Row] = []
            for row in rows:
                try:
                    out = self._row(index, step, row)
                except Rejected as exc:
                    rejected.append({"row": row, "reason": str(exc), "step": index})
                    continue
                if out is not None:
                    kept.append(out)
            rows = kept
        return rows, rejected

    def _row(self, index: int, step: Step, row: Row) -> Row | None:
        if step.rename is not None:
            return {step.rename.get(k, k): v for k, v in row.items()}
        if step.select is not None:
            return {k: row.get(k) for k in step.select}
        if step.drop is not None:
            return {k: v for k, v in row.items() if k not in step.drop}
        if step.fill is not None:
            out = dict(row)
            for key, value in step.fill.items():
                if out.get(key) is None:
                    out[key] = value
            return out
        if step.cast is not None:
            out = dict(row)
            for key, kind in step.cast.items():
                value = out.get(key)
                if value is None or (value == "" and kind != "str"):
                    out[key] = None
                    continue
                try:
                    out[key] = CASTS[kind](value)
                except (ValueError, TypeError) as exc:
                    raise Rejected(f"cast {key} to {kind}: {exc}") from None
            return out
        if step.filter is not None:
            if self._exprs.truthy(self._eval(self._compiled[index], row, f"filter {step.filter!r}")):
                return row
            self.filtered += 1
            return None
        if step.derive is not None:
            out = dict(row)
            for key, fn in self._compiled[index].items():
                out[key] = self._eval(fn, out, f"derive {key}")
            return out
        if step.dedupe is not None:
            key_values = [row.get(k) for k in step.dedupe] if step.dedupe else row
            digest = hashlib.blake2b(dumps(key_values).encode(), digest_size=16).digest()
            seen = self._seen[index]
            if digest in seen:
                self.filtered += 1
                return None
            seen.add(digest)
            return row
        return self._call_row(index, step, row)

    def _eval(self, fn: Any, row: Row, what: str) -> Any:
        from jinja2 import Undefined

        try:
            value = fn({"row": self._exprs.scope("row", row, noun="column")})
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
        except Exception as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise Rejected(f"{what}: {message}") from None
        return value

    def _call(self, fn: Callable[..., Any], arg: Any) -> Any:
        if inspect.iscoroutinefunction(fn):
            if self.loop is None:
                return asyncio.run(fn(arg))
            return asyncio.run_coroutine_threadsafe(fn(arg), self.loop).result()
        return fn(arg)

    def _call_row(self, index: int, step: Step, row: Row) -> Row | None:
        try:
            out = self._call(self._compiled[index], dict(row))
        except Exception as exc:
            raise Rejected(f"python {step.python}: {type(exc).__name__}: {exc}") from None
        if out is None:
            self.filtered += 1
            return None
        if not isinstance(out, dict):
            raise Rejected(f"python {step.python} returned {type(out).__name__}, expected a dict or None")
        return out

    def _call_batch(self, index: int, step: Step, rows: list[Row]) -> list[Row]:
        try:
            out = self._call(self._compiled[index], [dict(r) for r in rows])
        except Exception as exc:
            raise TaskError(f"steps[{index}] python {step.python}: {type(exc).__name__}: {exc}", retryable=False) from exc
        if not isinstance(out, list) or not all(isinstance(r, dict) for r in out):
            raise TaskError(f"steps[{index}] python {step.python} must return a list of dicts", retryable=False)
        return list(out)


class Transform:
    """Apply ``steps`` to a dataset; output the new dataset, counts and rejected rows with reasons."""

    type = "etl.transform"
    Params = TransformParams

    async def run(self, ctx: TaskContext, params: TransformParams) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await asyncio.to_thread(self._run, ctx, params, loop)

    def _run(self, ctx: TaskContext, params: TransformParams, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
        started = time.perf_counter()
        pipeline = Pipeline(params.steps, loop, ctx.settings)
        rows_in = 0
        sample: list[Row] = []
        rejected_writer: DatasetWriter | None = None
        name = ctx.task_id or "transform"
        try:
            with DatasetWriter(ctx, name) as writer:
                for batch in input_batches(ctx, params.dataset, params.rows, params.batch_size):
                    rows_in += len(batch)
                    kept, rejected = pipeline.apply(batch)
                    writer.write(kept)
                    if rejected:
                        if rejected_writer is None:
                            rejected_writer = DatasetWriter(ctx, f"{name}-rejected")
                        rejected_writer.write(rejected)
                        sample.extend(rejected[: REJECTED_SAMPLE - len(sample)])
                        if params.max_rejected is not None and rejected_writer.rows > params.max_rejected:
                            raise TaskError(
                                f"{rejected_writer.rows} rows rejected, more than max_rejected={params.max_rejected}; "
                                f"first: {sample[0]['reason']}",
                                retryable=False,
                                data={"rejected_sample": sample},
                            )
        except BaseException:
            if rejected_writer is not None:
                rejected_writer.discard()
            raise
        rejected_ref = rejected_writer.close() if rejected_writer is not None else None
        ctx.log(f"transformed {rows_in} rows -> {writer.rows} ({pipeline.filtered} filtered, {len(sample)}+ rejected)")
        return {
            "dataset": writer.ref(),
            "rows_in": rows_in,
            "rows": writer.rows,
            "filtered": pipeline.filtered,
            "rejected": {
                "rows": rejected_ref["rows"] if rejected_ref else 0,
                "sample": sample,
                "dataset": rejected_ref,
            },
            "duration_s": round(time.perf_counter() - started, 3),
        }
