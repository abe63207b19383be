"""ETL: extract -> transform -> load on real SQLite and PostgreSQL, files, and an HTTP API fake."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from connectors.etl.extract import Extract
from connectors.etl.load import Load
from connectors.etl.transform import Transform
from hub.errors import TaskError
from tests.fakes.context import task_context


def run(kind: Any, ctx: Any, **params: Any) -> Any:
    return asyncio.run(kind.run(ctx, kind.Params.model_validate(params)))


def url_of(store: Any) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def read_dataset(home: Path, dataset: dict[str, Any]) -> list[dict[str, Any]]:
    path = home / "artifacts" / dataset["ref"].removeprefix("artifact:")
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- functions the python steps call ---------------------------------------------------------


def shout(row: dict[str, Any]) -> dict[str, Any] | None:
    if row["name"] == "skip me":
        return None
    if row["name"] == "boom":
        raise RuntimeError("cannot shout at boom")
    return {**row, "name": row["name"].upper()}


def number_batch(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "n": i} for i, r in enumerate(rows)]


# -- SQL to SQL ------------------------------------------------------------------------------


def test_sql_extract_transform_upsert(store: Any, tmp_path: Path) -> None:
    url = url_of(store)
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE src_orders (id INTEGER PRIMARY KEY, email VARCHAR(100), amount VARCHAR(20), placed DATE)"))
        conn.execute(
            text("INSERT INTO src_orders VALUES (:id, :email, :amount, :placed)"),
            [
                {"id": 1, "email": "Ana@Example.com", "amount": "10.50", "placed": "2024-01-02"},
                {"id": 2, "email": "bo@example.org", "amount": "0", "placed": "2024-01-03"},
                {"id": 3, "email": "cy@example.net", "amount": "abc", "placed": "2024-01-04"},
                {"id": 4, "email": "ana@example.com", "amount": "7", "placed": "2024-01-05"},
            ],
        )
    ctx = task_context(tmp_path, store, task_id="extract")
    extracted = run(Extract(), ctx, sql={"url": url, "query": "SELECT * FROM src_orders WHERE id > :min ORDER BY id", "params": {"min": 0}}, batch_size=2)
    assert extracted["rows"] == 4
    assert extracted["dataset"]["columns"] == ["id", "email", "amount", "placed"]
    assert read_dataset(tmp_path, extracted["dataset"])[0]["placed"] == "2024-01-02"  # dates travel as ISO text

    ctx = dataclasses.replace(ctx, task_id="transform")
    transformed = run(
        Transform(),
        ctx,
        dataset=extracted["dataset"],
        batch_size=3,
        steps=[
            {"rename": {"email": "customer"}},
            {"cast": {"amount": "float"}},
            {"filter": "row.amount > 0"},
            {"derive": {"customer": "row.customer | lower", "domain": "row.customer | domain", "gross": "row.amount * 2"}},
            {"dedupe": ["customer"]},
            {"drop": ["placed"]},
        ],
    )
    assert transformed["rows_in"] == 4
    assert transformed["rows"] == 1
    assert transformed["filtered"] == 2  # amount 0, and the duplicate customer
    assert transformed["rejected"]["rows"] == 1
    assert transformed["rejected"]["sample"][0]["row"]["id"] == 3
    assert "cast amount to float" in transformed["rejected"]["sample"][0]["reason"]
    assert read_dataset(tmp_path, transformed["dataset"]) == [
        {"id": 1, "customer": "ana@example.com", "amount": 10.5, "domain": "example.com", "gross": 21.0}
    ]

    ctx = dataclasses.replace(ctx, task_id="load")
    loaded = run(Load(), ctx, dataset=transformed["dataset"], sql={"url": url, "table": "report", "mode": "upsert", "key": ["customer"], "create": True})
    assert loaded["rows"] == 1 and loaded["rejected"]["rows"] == 0
    again = run(Load(), ctx, rows=[{"customer": "ana@example.com", "amount": 99, "gross": 198}, {"customer": "new@x.io", "amount": 1}], sql={"url": url, "table": "report", "mode": "upsert", "key": ["customer"]})
    assert again["rows"] == 2
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT customer, amount, gross, domain FROM report ORDER BY customer")).all()
    assert [tuple(r) for r in rows] == [("ana@example.com", 99.0, 198.0, "example.com"), ("new@x.io", 1.0, None, None)]


def test_load_rejects_bad_rows_and_rolls_back_over_the_limit(store: Any, tmp_path: Path) -> None:
    url = url_of(store)
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, born DATE)"))
    ctx = task_context(tmp_path, store)
    rows = [
        {"id": 1, "name": "ana", "born": "1990-05-01"},
        {"id": 2, "name": None, "born": None},  # NOT NULL violated: the database says why
        {"id": "three", "name": "cy"},  # not an integer
        {"id": 4, "name": "di", "born": "1990-02-30"},  # not a date
        {"id": 5, "name": "ed"},
    ]
    with pytest.raises(TaskError) as err:
        run(Load(), ctx, rows=rows, sql={"url": url, "table": "people"})
    assert err.value.retryable is False
    assert "rejected" in str(err.value)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM people")).scalar() == 0  # all or nothing

    out = run(Load(), ctx, rows=rows, batch_size=2, max_rejected=3, sql={"url": url, "table": "people"})
    assert out["rows"] == 2
    reasons = {r["row"]["id"]: r["reason"] for r in out["rejected"]["sample"]}
    assert set(reasons) == {2, "three", 4}
    assert "column id" in reasons["three"]
    assert "column born" in reasons[4]
    assert "null" in reasons[2].lower()
    with store.engine.connect() as conn:
        got = conn.execute(text("SELECT id, name, born FROM people ORDER BY id")).all()
    assert [(r[0], r[1], str(r[2]) if r[2] else None) for r in got] == [(1, "ana", "1990-05-01"), (5, "ed", None)]


def test_load_replace_and_config_errors(sqlite_store: Any, tmp_path: Path) -> None:
    url = url_of(sqlite_store)
    ctx = task_context(tmp_path, sqlite_store)
    with pytest.raises(TaskError, match="create: true"):
        run(Load(), ctx, rows=[{"a": 1}], sql={"url": url, "table": "nope"})
    run(Load(), ctx, rows=[{"a": 1, "tags": ["x"], "ok": True}], sql={"url": url, "table": "t", "create": True})
    with pytest.raises(TaskError, match="extra_columns"):
        run(Load(), ctx, rows=[{"a": 2, "zzz": 1}], sql={"url": url, "table": "t"})
    out = run(Load(), ctx, rows=[{"a": 2, "zzz": 1}, {"a": 3}], sql={"url": url, "table": "t", "mode": "replace", "extra_columns": "ignore"})
    assert out["rows"] == 2
    with sqlite_store.engine.connect() as conn:
        assert [r[0] for r in conn.execute(text("SELECT a FROM t ORDER BY a"))] == [2, 3]
    with pytest.raises(TaskError, match="dataset"):
        run(Load(), ctx, dataset={"ref": "artifact:../../etc/passwd"}, sql={"url": url, "table": "t"})
    with pytest.raises(ValueError, match="key"):
        Load.Params.model_validate({"rows": [], "sql": {"url": url, "table": "t", "mode": "upsert"}})


# -- transform ---------------------------------------------------------------------------------


def test_transform_python_steps_and_limits(tmp_path: Path) -> None:
    ctx = task_context(tmp_path)
    rows = [{"name": "ana"}, {"name": "skip me"}, {"name": "boom"}, {"name": "bo"}]
    out = run(
        Transform(),
        ctx,
        rows=rows,
        steps=[
            {"python": f"{__name__}:shout"},
            {"python": f"{__name__}:number_batch", "mode": "batch"},
            {"derive": {"missing": "row.nope"}},
        ],
    )
    assert out["rows"] == 0
    assert out["rejected"]["rows"] == 3
    reasons = [r["reason"] for r in out["rejected"]["sample"]]
    assert "cannot shout at boom" in reasons[0]
    assert "row has no column 'nope'" in reasons[1]
    rejected_rows = read_dataset(tmp_path, out["rejected"]["dataset"])
    assert [r["row"]["name"] for r in rejected_rows] == ["boom", "ANA", "BO"]

    ok = run(Transform(), ctx, rows=rows[:1] + rows[3:], steps=[{"python": f"{__name__}:shout"}, {"python": f"{__name__}:number_batch", "mode": "batch"}, {"select": ["n", "name"]}])
    assert read_dataset(tmp_path, ok["dataset"]) == [{"n": 0, "name": "ANA"}, {"n": 1, "name": "BO"}]

    with pytest.raises(TaskError, match="max_rejected"):
        run(Transform(), ctx, rows=rows, max_rejected=0, steps=[{"cast": {"name": "int"}}])
    with pytest.raises(TaskError, match="steps\\[0\\]"):
        run(Transform(), ctx, rows=rows, steps=[{"python": "no.such.module:fn"}])
    with pytest.raises(ValueError, match="exactly one operation"):
        Transform.Params.model_validate({"rows": [], "steps": [{"rename": {"a": "b"}, "drop": ["c"]}]})


def test_transform_python_rules_follow_the_python_task_module_policy(tmp_path: Path) -> None:
    """An ETL ``python`` rule imports user functions under the same allow-list as the ``python``
    task (HUB_PYTHON_MODULES; by default the project's own modules): not ``os:system``."""
    ctx = task_context(tmp_path)
    with pytest.raises(TaskError, match="steps\\[0\\].*os"):
        run(Transform(), ctx, rows=[{"cmd": "true"}], steps=[{"python": "os:system"}])
    with pytest.raises(TaskError, match="steps\\[0\\].*subprocess"):
        run(Transform(), ctx, rows=[{"cmd": "true"}], steps=[{"python": "subprocess:getoutput"}])


def test_transform_casts_and_fill(tmp_path: Path) -> None:
    ctx = task_context(tmp_path)
    rows = [{"a": "1", "b": "2.5", "c": "yes", "d": "2024-03-01T10:00:00Z", "e": '{"x": 1}', "f": ""}]
    out = run(Transform(), ctx, rows=rows, steps=[
        {"cast": {"a": "int", "b": "float", "c": "bool", "d": "date", "e": "json", "f": "int"}},
        {"fill": {"f": 0, "g": "new"}},
    ])
    assert read_dataset(tmp_path, out["dataset"]) == [{"a": 1, "b": 2.5, "c": True, "d": "2024-03-01", "e": {"x": 1}, "f": 0, "g": "new"}]


# -- files -------------------------------------------------------------------------------------


def test_csv_to_jsonl_and_back(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id,name,score\n1,ana,3.5\n2,bo,\n3,cy,4\n")
    ctx = task_context(tmp_path)
    ext = run(Extract(), ctx, file={"path": str(src)}, limit=2)
    assert ext["rows"] == 2
    tr = run(Transform(), ctx, dataset=ext["dataset"]["ref"], steps=[{"cast": {"id": "int", "score": "float"}}])
    out = run(Load(), ctx, dataset=tr["dataset"], file={"path": str(tmp_path / "out" / "rows.jsonl")})
    assert out["rows"] == 2
    lines = [json.loads(x) for x in (tmp_path / "out" / "rows.jsonl").read_text().splitlines()]
    assert lines == [{"id": 1, "name": "ana", "score": 3.5}, {"id": 2, "name": "bo", "score": None}]

    back = run(Extract(), ctx, file={"path": str(tmp_path / "out" / "rows.jsonl")})
    target = tmp_path / "out.csv"
    run(Load(), ctx, dataset=back["dataset"], file={"path": str(target), "columns": ["name", "id"]})
    run(Load(), ctx, rows=[{"id": 9, "name": "zed", "extra": 1}], file={"path": str(target), "mode": "append"})
    with target.open() as fh:
        assert list(csv.reader(fh)) == [["name", "id"], ["ana", "1"], ["bo", "2"], ["zed", "9"]]
    odd = tmp_path / "in.txt"
    odd.write_text("x")
    with pytest.raises(TaskError, match="format"):
        run(Extract(), ctx, file={"path": str(odd)})


# -- HTTP --------------------------------------------------------------------------------------


def _api() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    items = [{"id": i, "name": f"item {i}"} for i in range(1, 8)]
    state = {"throttled": 0, "seen": []}

    async def cursor(request: Request) -> JSONResponse:
        state["seen"].append(dict(request.query_params))
        if request.headers.get("authorization") != "Bearer t0k":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if state["throttled"] == 0:
            state["throttled"] += 1
            return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "0"})
        start = int(request.query_params.get("after", 0))
        size = int(request.query_params.get("limit", 3))
        page = items[start : start + size]
        nxt = start + size if start + size < len(items) else None
        return JSONResponse({"results": page, "paging": {"next": {"after": str(nxt)} if nxt else None}})

    async def numbered(request: Request) -> JSONResponse:
        page = int(request.query_params["page"])
        size = int(request.query_params["per_page"])
        return JSONResponse({"data": {"items": items[(page - 1) * size : page * size]}})

    async def linked(request: Request) -> JSONResponse:
        offset = int(request.query_params.get("offset", 0))
        headers = {}
        if offset + 4 < len(items):
            headers["Link"] = f'</linked?offset={offset + 4}>; rel="next"'
        return JSONResponse(items[offset : offset + 4], headers=headers)

    async def broken(request: Request) -> JSONResponse:
        return JSONResponse({"error": "down"}, status_code=503)

    app = Starlette(routes=[Route("/cursor", cursor), Route("/numbered", numbered), Route("/linked", linked), Route("/broken", broken)])
    return app, state


def test_http_extract_follows_every_kind_of_pagination(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.errors import ConnectorError
    from tests.fakes.server import serve

    app, state = _api()
    ctx = task_context(tmp_path)
    with serve(app) as base:
        with pytest.raises(ConnectorError, match="HUB_HTTP_ALLOW_HOSTS"):
            run(Extract(), ctx, http={"url": f"{base}/linked"})  # the network guard blocks loopback
        monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
        out = run(Extract(), ctx, batch_size=2, http={
            "url": f"{base}/cursor", "headers": {"Authorization": "Bearer t0k"}, "query": {"limit": 3},
            "pagination": {"type": "cursor", "param": "after", "cursor_path": "paging.next.after"},
        })
        assert out["rows"] == 7 and state["throttled"] == 1  # the 429 was retried after Retry-After
        assert [r["id"] for r in read_dataset(tmp_path, out["dataset"])] == list(range(1, 8))

        out = run(Extract(), ctx, http={
            "url": f"{base}/numbered", "records_path": "data.items",
            "pagination": {"type": "page", "param": "page", "size_param": "per_page", "size": 3},
        })
        assert out["rows"] == 7
        out = run(Extract(), ctx, limit=5, http={"url": f"{base}/linked", "pagination": {"type": "link_header"}})
        assert out["rows"] == 5
        with pytest.raises(ConnectorError) as err:
            run(Extract(), ctx, http={"url": f"{base}/broken", "max_retries": 1})
        assert err.value.status == 503 and err.value.retryable
        with pytest.raises(ConnectorError) as err:
            run(Extract(), ctx, http={"url": f"{base}/cursor", "pagination": {"type": "none"}})
        assert err.value.status == 401 and not err.value.retryable


# -- volume ------------------------------------------------------------------------------------


_PIPELINE = """
import asyncio, json, os, sys, threading, time
sys.path.insert(0, sys.argv[3])
from tests.fakes.context import task_context
from connectors.etl.extract import Extract
from connectors.etl.load import Load
from connectors.etl.transform import Transform
from pathlib import Path

def run(kind, ctx, **params):
    return asyncio.run(kind.run(ctx, kind.Params.model_validate(params)))

home, src, dst = Path(sys.argv[1]), "sqlite:///" + sys.argv[2] + "/src.db", "sqlite:///" + sys.argv[2] + "/dst.db"
ctx = task_context(home)


def pipeline(limit, table):
    ext = run(Extract(), ctx, sql={"url": src, "table": "events"}, batch_size=2000, limit=limit)
    tr = run(Transform(), ctx, dataset=ext["dataset"], batch_size=2000, steps=[
        {"filter": "row.kind == 'keep'"},
        {"cast": {"amount": "int"}},
        {"derive": {"double": "row.amount * 2"}},
    ])
    ld = run(Load(), ctx, dataset=tr["dataset"], batch_size=2000,
             sql={"url": dst, "table": table, "create": True, "mode": "upsert", "key": ["id"]})
    return ext, tr, ld


pipeline(5000, "warmup")  # imports and first-use caches are not what we measure


def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

peak, done = [rss()], threading.Event()
before = peak[0]

def sample():
    while not done.is_set():
        peak.append(max(peak[-1], rss()))
        time.sleep(0.005)

sampler = threading.Thread(target=sample)
sampler.start()
ext, tr, ld = pipeline(None, "kept")
done.set()
sampler.join()
print(json.dumps({"extract": ext, "transform": tr, "load": ld, "growth": peak[-1] - before}))
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads resident memory from /proc")
def test_100k_rows_move_with_bounded_memory(tmp_path: Path) -> None:
    """100,000 rows of ~300 bytes (~30 MB) flow SQLite -> transform -> SQLite in a fresh process;
    its resident memory, sampled while it runs, grows by a small fraction of the data: only a batch is
    held at a time."""
    import subprocess
    import sys

    from sqlalchemy import create_engine

    n = 100_000
    engine = create_engine(f"sqlite:///{tmp_path / 'src.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, amount TEXT, note TEXT)"))
        conn.exec_driver_sql(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?) "
            "INSERT INTO events SELECT i, CASE i % 3 WHEN 0 THEN 'skip' ELSE 'keep' END, CAST(i % 100 AS TEXT), "
            "printf('%.250d', i) FROM seq",
            (n,),
        )
    engine.dispose()
    repo_dir = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run(
        [sys.executable, "-c", _PIPELINE, str(tmp_path / "home"), str(tmp_path), repo_dir],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    ext, tr, ld = out["extract"], out["transform"], out["load"]

    data_size = (tmp_path / "home" / "artifacts" / ext["dataset"]["ref"].removeprefix("artifact:")).stat().st_size
    assert ext["rows"] == n and data_size > 25_000_000
    assert tr["rows"] == ld["rows"] == n - n // 3 and tr["filtered"] == n // 3
    assert out["growth"] < data_size / 4, f"grew {out['growth'] / 1e6:.1f} MB for {data_size / 1e6:.1f} MB of data"
    check = create_engine(f"sqlite:///{tmp_path / 'dst.db'}")
    with check.connect() as conn:
        expected = (n - n // 3, sum(2 * (i % 100) for i in range(1, n + 1) if i % 3))
        assert tuple(conn.execute(text("SELECT count(*), sum(double) FROM kept")).one()) == expected
    check.dispose()
