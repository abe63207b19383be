"""Online scoring: an eval attached to triage@production scores a sample of the flow's calls in
the background; when the answers go bad the window's mean falls and the alert flow starts."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.evals.online import install
from hub.evals.online_store import OnlineStore
from hub.evals.spec import load_text
from hub.flow.loader import load_text as load_flow
from hub.llm.records import CallLog
from hub.prompts.registry import use_prompts_dir
from hub.testing import make_engine

pytestmark = pytest.mark.anyio

ONLINE_EVAL = """\
name: triage_online
target: {prompt: triage}
online: {label: production, sample_rate: 0.2, window: 5, min_samples: 5, alert_below: 0.7, alert_flow: ops.prompt_alert}
assert:
  - {type: field, path: category, one_of: [billing, bug]}
  - {type: json_schema, schema: {type: object, required: [urgency]}}
"""
PRODUCTION_FLOW = """\
id: triage_flow
namespace: support
inputs: [{id: body, type: string, required: true}]
tasks:
  - {id: triage, type: llm.chat, prompt: triage@production, vars: {body: "{{ inputs.body }}"}}
outputs: {category: "{{ outputs.triage.value.category }}"}
"""
ALERT_FLOW = """\
id: prompt_alert
namespace: ops
inputs: [{id: eval, type: string}, {id: mean_score, type: float}, {id: samples, type: int}]
tasks:
  - {id: page, type: log, message: "{{ inputs.eval }} fell to {{ inputs.mean_score }} over {{ inputs.samples }} calls"}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_sampled_calls_are_scored_and_a_falling_score_starts_the_alert_flow(store, client, fake, project: Path):
    state = {"category": "billing"}

    def answer(request: dict[str, Any]) -> str:
        return json.dumps({"category": state["category"], "urgency": "low"})

    fake.responder = answer
    engine = make_engine(store, home=project / ".hub", prompts_dir=project / "prompts")
    engine.services["llm"] = client
    scoring = install(engine)
    scoring.rng = random.Random(1)
    OnlineStore(store.engine).attach(load_text(ONLINE_EVAL, "evals/triage_online.yaml"))
    with use_prompts_dir(project / "prompts"):
        flow = load_flow(PRODUCTION_FLOW)
    engine.deploy(load_flow(ALERT_FLOW))

    async def production_calls(n: int) -> list[dict[str, Any]]:
        return [await engine.execute(flow, {"body": f"ticket {i}"}) for i in range(n)]

    good = await production_calls(50)
    await scoring.drain()
    assert all(e["state"] == "SUCCESS" for e in good)
    online = OnlineStore(store.engine)
    first = online.scores("triage_online", 1000)
    assert first and all(s["passed"] and s["score"] == 1.0 for s in first), first[0]["assertions"]
    assert not online.get("triage_online")["alerting"]

    state["category"] = "other"  # the model drifts: answers now miss the category check
    bad = await production_calls(50)
    await scoring.drain()
    await engine.queue.drain()  # type: ignore[attr-defined]
    assert all(e["state"] == "SUCCESS" for e in bad)  # scoring never failed a production step
    scores = online.scores("triage_online", 1000)
    assert 10 <= len(scores) <= 30  # 100 calls at a sample rate of 0.2
    assert len(fake.requests) == 100  # the assertions need no model: scoring asked nothing
    # each score is stored with the call it scored
    call_ids = {c["id"]: c for e in [*good, *bad] for c in CallLog(store.engine).calls(e["id"])}
    for s in scores:
        assert s["call_id"] in call_ids and call_ids[s["call_id"]]["execution_id"] == s["execution_id"]
        assert s["path"] == "triage" and s["prompt_version"] == 1
    failing = [s for s in scores if not s["passed"]]
    assert failing and failing[0]["score"] == 0.5  # the schema check still passes
    [status] = online.status()
    assert status["alerting"] and status["mean_score"] < 0.7 and status["samples"] == 5, {k: status[k] for k in ("alerting", "mean_score", "samples", "scored", "previous_mean_score")}
    alerts = store.list_executions(namespace="ops", flow_id="prompt_alert")
    assert len(alerts) == 1  # once, not on every low score
    alert = store.get_execution(alerts[0]["id"])
    assert alert["state"] == "SUCCESS" and alert["inputs"]["eval"] == "triage_online"
    assert alert["inputs"]["mean_score"] < 0.7 and alert["inputs"]["samples"] == 5

    from hub.api.app import create_app

    with TestClient(create_app(engine, auth="open", background=False)) as api:
        [shown] = api.get("/v1/evals/online").json()
        assert shown["alerting"] is True and shown["scored"] == len(scores)
        assert len(api.get("/v1/evals/online/triage_online/scores", params={"limit": 5}).json()) == 5
        scored = next(e for e in bad if any(s["execution_id"] == e["id"] for s in scores))
        trace = api.get(f"/v1/executions/{scored['id']}/trace").json()
        assert [s["eval_name"] for s in trace["scores"]] == ["triage_online"]
        assert api.get("/v1/evals/online/nope/scores").status_code == 404


async def test_calls_of_another_label_are_not_scored(store, client, fake, project: Path):
    fake.responder = lambda request: json.dumps({"category": "billing", "urgency": "low"})
    engine = make_engine(store, home=project / ".hub", prompts_dir=project / "prompts")
    engine.services["llm"] = client
    scoring = install(engine)
    OnlineStore(store.engine).attach(load_text(ONLINE_EVAL.replace("sample_rate: 0.2", "sample_rate: 1"), "x.yaml"))
    with use_prompts_dir(project / "prompts"):
        pinned = load_flow(PRODUCTION_FLOW.replace("triage@production", "triage:1"))
        production = load_flow(PRODUCTION_FLOW)
    await engine.execute(pinned, {"body": "a"})
    await scoring.drain()
    assert OnlineStore(store.engine).scores("triage_online") == []
    await engine.execute(production, {"body": "b"})
    await scoring.drain()
    assert len(OnlineStore(store.engine).scores("triage_online")) == 1
