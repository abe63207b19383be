"""Every list of the API that grows pages with a cursor (issue 18, item 20): following ``next``
(in the body, or in the ``Link`` / ``Hub-Next-Cursor`` headers of lists answered as arrays)
returns each item exactly once, in the list's order, on SQLite and PostgreSQL. Rows share
timestamps on purpose: the id breaks ties."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from hub.approvals import install
from hub.core.keyset import encode
from hub.engine.runner import Engine
from hub.evals.results import EvalStore
from hub.llm.records import CallLog
from hub.prompts.registry import Move, PromptRegistry
from hub.prompts.spec import parse_prompt
from tests.service.conftest import make_client

N = 7
LIMIT = 3


@pytest.fixture
def api(engine: Engine) -> Any:
    with make_client(engine, auth="open") as client:
        yield client


def walk(client: TestClient, path: str, items: Callable[[Any], list[Any]], **params: Any) -> list[Any]:
    """Every item of a list, page by page, following its cursor; checks each page's size."""
    seen: list[Any] = []
    cursor = None
    for _ in range(100):
        response = client.get(path, params={**params, "limit": LIMIT, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        page = items(body)
        seen += page
        cursor = body.get("next") if isinstance(body, dict) else response.headers.get("Hub-Next-Cursor")
        if isinstance(body, list) and cursor:
            assert f"cursor={cursor}" in response.headers["Link"] and response.headers["Link"].endswith('rel="next"')
        if cursor is None:
            assert len(page) <= LIMIT
            return seen
        assert len(page) == LIMIT
    raise AssertionError("the cursor never ended")


def test_flow_revisions_logs_and_llm_calls(engine: Engine, api: TestClient) -> None:
    store = engine.store
    for revision in range(N):
        store.save_flow("demo", "f", f"id: f\nnamespace: demo\n# {revision}\ntasks: []\n", f"h{revision}")
    revisions = walk(api, "/v1/flows/demo/f/revisions", lambda b: b)
    assert [r["revision"] for r in revisions] == list(range(1, N + 1))
    assert api.get("/v1/flows/demo/f/revisions").json() == revisions  # no limit: everything, as before

    execution_id = store.create_execution(namespace="demo", flow_id="f", revision=1, inputs={}, state="SUCCESS")
    for i in range(N):
        store.add_log(execution_id, "info", f"line {i}")
    lines = walk(api, f"/v1/executions/{execution_id}/logs", lambda b: b)
    assert [line["message"] for line in lines] == [f"line {i}" for i in range(N)]

    log = CallLog(store.engine)
    at = time.time()
    for i in range(N):
        log.record(execution_id=execution_id, path=f"s{i}", status="ok", created_at=at, cost=0.01)
    calls = walk(api, f"/v1/executions/{execution_id}/llm", lambda b: b["calls"])
    assert [c["path"] for c in calls] == [f"s{i}" for i in range(N)]
    assert api.get(f"/v1/executions/{execution_id}/llm", params={"limit": 2}).json()["totals"]["calls"] == N


def test_prompt_versions_and_label_history(engine: Engine, api: TestClient, tmp_path: Path) -> None:
    registry = PromptRegistry(engine.store.engine, tmp_path)
    for i in range(N):
        text = f"name: p\nmessages: [{{role: user, content: 'version {i}'}}]\n"
        registry.save(parse_prompt(text), text)
        registry.set_label("p", "staging", i + 1, Move(actor="test", reason=f"move {i}"))
    versions = walk(api, "/v1/prompts/p", lambda b: b["versions"])
    assert [v["version"] for v in versions] == list(range(1, N + 1))
    assert "latest" in versions[-1]["labels"] and "latest" not in versions[0]["labels"]  # across pages
    history = walk(api, "/v1/prompts/p/history", lambda b: b)
    assert [(m["label"], m["version"]) for m in history if m["label"] == "staging"] == [
        ("staging", v) for v in range(1, N + 1)]
    assert len({m["id"] for m in history}) == len(history)


def test_eval_runs_results_and_promotions(engine: Engine, api: TestClient) -> None:
    evals = EvalStore(engine.store.engine)
    for i in range(N):
        evals.create_run(f"run{i}", name="e")
    with engine.store.engine.begin() as conn:  # one instant for all: the id orders them
        conn.execute(evals_runs_table().update().values(created_at=1000.0))
    runs = walk(api, "/v1/evals/runs", lambda b: b)
    assert [r["id"] for r in runs] == [f"run{i}" for i in reversed(range(N))]
    for variant in ("a", "b"):
        for case in range(N):
            evals.add_result(run_id="run0", variant=variant, case_id=f"c{case}", case_index=case, repeat=1,
                             passed=True, score=1.0)
    results = walk(api, "/v1/evals/runs/run0/results", lambda b: b)
    assert [(r["variant"], r["case_index"]) for r in results] == [(v, c) for v in "ab" for c in range(N)]
    for i in range(N):
        evals.record_promotion(run_id="run0", prompt_name="p", label="production", version=i + 1, previous=i or None)
    promotions = walk(api, "/v1/evals/promotions", lambda b: b)
    assert [p["version"] for p in promotions] == list(range(1, N + 1))


def evals_runs_table() -> Any:
    from hub.evals.tables import EVAL_RUNS

    return EVAL_RUNS


def test_approvals_and_their_audit(engine: Engine, api: TestClient) -> None:
    approvals = install(engine)
    execution_id = engine.store.create_execution(namespace="d", flow_id="f", revision=1, inputs={}, state="PAUSED")
    gates = []
    for i in range(N):
        gate = approvals.open({"execution_id": execution_id, "path": f"gate{i}", "namespace": "d", "flow_id": "f",
                               "task_id": f"gate{i}", "title": f"gate {i}", "message": "ok?", "approvers": ["key:x"],
                               "created_at": 500.0})
        gates.append(gate["id"])
    listed = walk(api, "/v1/approvals", lambda b: b["items"], mine="false")
    assert [g["id"] for g in listed] == sorted(gates, reverse=True)  # one instant: newest id first
    for i in range(N):
        approvals.record(gates[0], "api", "key:x", "view", "info", None, {"n": i})
    audit = walk(api, f"/v1/approvals/{gates[0]}/audit", lambda b: b)
    assert [a["detail"] for a in audit if a["action"] == "view"] == [{"n": i} for i in reversed(range(N))]
    every = walk(api, "/v1/approvals/audit", lambda b: b)
    assert len(every) == len({a["id"] for a in every}) == N + N  # N views and N "created"


def test_the_outbox_and_the_messages(engine: Engine, api: TestClient) -> None:
    from connectors.email.tables import EMAIL_MESSAGES as table

    rows = [{"id": f"m{i:02d}", "idempotency_key": f"k{i}", "backend": "outbox", "status": "outbox" if i % 2 else "sent",
             "from_address": "a@example.com", "subject": f"s{i}", "message_id": f"<{i}@x>", "created_at": 100.0 + i // 3,
             "updated_at": 100.0} for i in range(2 * N)]
    with engine.store.engine.begin() as conn:
        conn.execute(insert(table), rows)
    expected = sorted(rows, key=lambda r: (-r["created_at"], r["id"]))  # newest first, then by id
    messages = walk(api, "/v1/email/messages", lambda b: b)
    assert [m["id"] for m in messages] == [r["id"] for r in expected]
    kept = walk(api, "/v1/email/outbox", lambda b: b)
    assert [m["id"] for m in kept] == [r["id"] for r in expected if r["status"] == "outbox"]
    offset = api.get("/v1/email/messages", params={"limit": 2, "offset": 2}).json()
    assert [m["id"] for m in offset] == [r["id"] for r in expected[2:4]]  # limit/offset still work


def test_traces(engine: Engine, api: TestClient) -> None:
    from hub.telemetry.tables import SPANS as spans

    ids = []
    for i in range(N):
        execution_id = engine.store.create_execution(namespace="d", flow_id="f", revision=1, inputs={}, state="SUCCESS")
        engine.store.update_execution(execution_id, trace_id=f"{i:032x}")
        with engine.store.engine.begin() as conn:
            conn.execute(insert(spans).values(trace_id=f"{i:032x}", span_id=f"{i:016x}", name="run", start_time=50.0,
                                              end_time=51.0, duration_ms=1000.0, execution_id=execution_id))
        ids.append(execution_id)
    found = walk(api, "/v1/traces", lambda b: b["traces"])
    newest_first = sorted(ids, key=lambda i: (engine.store.get_execution(i)["created_at"], i), reverse=True)
    assert [t["execution_id"] for t in found] == newest_first


@pytest.mark.parametrize("path", [
    "/v1/approvals", "/v1/approvals/audit", "/v1/evals/runs", "/v1/evals/promotions", "/v1/email/messages", "/v1/traces",
])
def test_a_cursor_the_list_did_not_give_is_a_400(api: TestClient, path: str) -> None:
    assert api.get(path, params={"cursor": "%%%"}).status_code == 400
    assert api.get(path, params={"cursor": encode([True, "x", 1, 2, 3])}).status_code == 400


def test_traces_filtered_by_spans_page_through_a_bounded_scan(
    engine: Engine, api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Span filters (errors, duration) skip executions; a page looks at a bounded number of them
    and, when that runs out, ends short with a cursor where the scan stopped: following it finds
    every matching trace once, in order. Executions without stored spans are not traces."""
    from hub.telemetry import spanstore
    from hub.telemetry.tables import SPANS as spans

    monkeypatch.setattr(spanstore, "SCAN_BATCH", 2)
    monkeypatch.setattr(spanstore, "SCAN_LIMIT", 4)
    failing = []
    for i in range(12):
        execution_id = engine.store.create_execution(namespace="d", flow_id="f", revision=1, inputs={}, state="SUCCESS")
        engine.store.update_execution(execution_id, trace_id=f"{i:032x}")
        if i % 4 == 3:
            continue  # tracing was off: no spans
        with engine.store.engine.begin() as conn:
            conn.execute(insert(spans).values(trace_id=f"{i:032x}", span_id=f"{i:016x}", name="run", start_time=50.0,
                                              end_time=51.0, duration_ms=1000.0, execution_id=execution_id,
                                              status="ERROR" if i % 5 == 0 else "OK"))
        if i % 5 == 0:
            failing.append(execution_id)
    seen, cursor, pages = [], None, 0
    while True:
        body = api.get("/v1/traces", params={"errors": "true", "limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [t["execution_id"] for t in body["traces"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
        assert pages < 20
    assert seen == sorted(failing, reverse=True)
    assert pages > 2  # short pages were followed, not taken for the end
    everything = api.get("/v1/traces", params={"limit": 100}).json()
    assert everything["count"] == 3 and everything["next"] is not None  # 4 looked at (one untraced), then a cursor
