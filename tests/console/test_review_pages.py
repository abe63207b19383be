"""The review pages: an execution's LLM calls, its trace waterfall with GenAI spans, prompt
versions with diffs and a label move (direct and eval-gated), and an eval run's matrix."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.engine.runner import Engine
from hub.evals.runner import EvalRunner, Selection
from hub.evals.spec import load_file
from hub.llm.fake import FakeOpenAI
from hub.prompts.registry import PromptRegistry, use_prompts_dir
from hub.settings import HubSettings
from hub.store.store import Store
from hub.telemetry.middleware import install
from hub.telemetry.setup import build_tracer_provider
from tests.console.conftest import console, csrf, deploy, text_of, wait_state
from tests.console.llm import TRIAGE_FLOW, llm_client, project, two_version_run


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    with server.serve() as api_base:
        server.api_base = api_base  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def setup(store: Store, tmp_path: Path, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A traced engine with the LLM client on the fake, a prompts and an evals folder."""
    prompts, evals = project(tmp_path)
    monkeypatch.setenv("HUB_EVALS_DIR", str(evals))
    monkeypatch.delenv("HUB_TRACING", raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    settings = HubSettings(home=tmp_path / "home", prompts_dir=prompts)
    llm = llm_client(fake, fake.api_base, tmp_path)  # type: ignore[attr-defined]
    engine = Engine(store, settings, services={"llm": llm})
    provider = build_tracer_provider([], store=store, simple=True)
    install(engine, provider)
    with use_prompts_dir(prompts), console(engine, auth="open") as client:
        yield {"engine": engine, "client": client, "prompts": prompts, "evals": evals, "llm": llm,
               "settings": settings, "fake": fake}
    provider.shutdown()


def test_llm_calls_and_the_trace_waterfall_of_an_execution(setup: dict[str, Any]) -> None:
    client: TestClient = setup["client"]
    engine: Engine = setup["engine"]
    deploy(client, TRIAGE_FLOW)
    started = client.post("/v1/flows/support/triage/executions", json={"inputs": {"body": "I was charged twice"}})
    execution_id = started.json()["id"]
    done = wait_state(engine, execution_id, {"SUCCESS", "FAILED"}, timeout=90)  # the first call imports a lot
    assert done["state"] == "SUCCESS", done["error"]

    page = text_of(client.get(f"/executions/{execution_id}").text)
    assert "LLM calls 1 call" in page
    assert re.search(r"classify triage v1 fast ok \d+ / \d+ \$\d\.\d{4}", page), page

    html = client.get(f"/executions/{execution_id}/trace").text
    names = re.findall(r'<span class="name" style="padding-left:([\d.]+)rem" title="([^"]+)"', html)
    assert names[0] == ("0.0", "execution support.triage")
    assert ("0.8", "step classify") in names
    genai = [name for _, name in names if name.startswith("chat ")]
    assert genai, names  # the model call is a GenAI span under the step
    trace = text_of(html)
    assert "prompt triage" in trace and "version 1" in trace and "model fast" in trace and "tokens in" in trace
    assert "gen_ai.operation.name chat" in trace  # every attribute is listed
    listed = text_of(client.get("/traces", params={"flow": "support.triage"}).text)
    assert execution_id[:12] in listed and "SUCCESS" in listed


def test_prompt_versions_diff_and_a_label_move(setup: dict[str, Any]) -> None:
    client: TestClient = setup["client"]
    engine: Engine = setup["engine"]
    registry = PromptRegistry(engine.store.engine, setup["prompts"])
    registry.sync("triage")
    (setup["prompts"] / "triage.yaml").write_text(
        (setup["prompts"] / "triage.yaml").read_text().replace("You triage tickets.", "You triage tickets carefully."))
    registry.sync("triage")

    listed = text_of(client.get("/prompts").text)
    assert "triage Classify a ticket. v2 production → v1" in listed
    page = client.get("/prompts/triage").text
    assert '<span class="d del">-    content: You triage tickets.' in page
    assert '<span class="d add">+    content: You triage tickets carefully.' in page
    assert "Diff v1 → v2" in text_of(page)
    assert '<option selected>triage.yaml</option>' in page  # the eval of this prompt is offered as the gate

    moved = client.post("/prompts/triage/label", data={"csrf": csrf(client), "label": "staging", "version": "2",
                                                      "eval": ""})
    assert moved.status_code == 303 and registry.labels("triage")["staging"] == 2
    history = text_of(client.get("/prompts/triage").text)
    assert "staging → v2" in history
    # nothing scored or compared yet: the page says how to get there
    assert "No eval is attached to this prompt's production calls" in history
    assert "No comparison yet: hub eval FILE --candidate triage:V --against triage@production" in history


def test_window_means_and_the_chart_of_online_scores() -> None:
    from hub.console.quality import chart, window_means

    newest_first = [{"score": s, "passed": s >= 0.5, "created_at": 100.0 - i} for i, s in enumerate([0.0, 1.0, 0.5, 1.0, 1.0])]
    windows = window_means(newest_first, 2)
    assert [(w["samples"], w["mean_score"], w["pass_rate"]) for w in windows] == [(2, 0.5, 0.5), (2, 0.75, 1.0), (1, 1.0, 1.0)]
    assert (windows[0]["from"], windows[0]["to"]) == (99.0, 100.0)
    drawn = chart(list(reversed(newest_first)), 2, alert_below=0.5)
    assert drawn is not None and len(drawn["dots"]) == 5 and drawn["limit_y"] == 80.0  # the middle of 24..136
    assert [d["y"] for d in drawn["dots"]] == [24.0, 24.0, 80.0, 24.0, 136.0]  # score 1 at the top, 0 at the bottom
    assert drawn["mean_line"].split()[-1] == "576.0,80.0"  # the mean of the newest two scores: (1 + 0) / 2
    assert chart([], 2, None) is None


@pytest.mark.anyio
async def test_an_eval_gate_refuses_a_version_that_fails_and_the_matrix_shows_why(setup: dict[str, Any]) -> None:
    client: TestClient = setup["client"]
    engine: Engine = setup["engine"]
    run_id = await two_version_run(engine.store, setup["llm"], setup["prompts"], setup["evals"], setup["settings"])

    html = client.get(f"/evals/{run_id}").text
    page = text_of(html)
    assert "Matrix: cases × versions × models" in page and "failed" in page
    crash = re.findall(r'<td class="cell (pass|fail) ?[^"]*" data-case="crash" data-variant="([^"]+)"', html)
    assert [state for state, _ in crash] == ["fail", "pass"]  # v1 says billing for a crash, v2 reads it
    assert "category.accuracy" in page and "needs ≥ 0.8" in page  # the missed threshold, named
    assert re.search(r"\d+ ms · \$\d\.\d{4}", page)  # latency and cost per cell
    listed = text_of(client.get("/evals").text)
    assert run_id in listed and "triage" in listed

    refused = client.post("/prompts/triage/label", data={"csrf": csrf(client), "label": "production",
                                                        "version": "1", "eval": "triage.yaml"})
    assert refused.status_code == 303 and "refused=production" in refused.headers["location"]
    assert "did not pass this eval: label production did not move" in text_of(
        client.get(refused.headers["location"]).text)

    # the model now says billing for everything: v2 regresses against the first run
    setup["fake"].responder = lambda request: '{"category": "billing", "urgency": "low"}'
    runner = EvalRunner(engine.store, setup["llm"], setup["settings"])
    again = await runner.run(load_file(setup["evals"] / "triage.yaml"), baseline=run_id,
                             select=Selection(cache=False))  # the answers changed: do not reuse the cached ones
    html = client.get(f"/evals/{again.run_id}").text
    assert re.search(r'<td class="cell fail regressed" data-case="crash" data-variant="v2/fast"', html)
    assert "regressions: crash, error-500, hello" in text_of(html)
