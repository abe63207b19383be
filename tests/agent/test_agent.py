"""llm.agent: model -> tool calls -> results, every tool call a durable child step. The model is
the scripted OpenAI-compatible server; the tools are python functions standing in for a CRM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from hub import approvals
from hub.flow.loader import load_text
from hub.llm.client import LLMClient
from hub.llm.fake import FakeOpenAI, Reply
from hub.llm.settings import LLMSettings, ModelsConfig
from hub.store.store import Store
from hub.testing import make_engine, result_of
from tests.agent.agent_tools import calls

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
T = "tests.agent.agent_tools"

FLOW = f"""
id: crm_assist
namespace: test
inputs: [{{id: request, type: string}}]
tasks:
  - id: assistant
    type: llm.agent
    model: fast
    instructions: You are a CRM assistant. Use the tools; never guess an id.
    input: "{{{{ inputs.request }}}}"
    approval: {{approvers: [lead@acme.com]}}
    tools:
      - name: search_contact
        description: Find a contact by name.
        task: python
        with: {{function: "{T}:search_contact"}}
        arguments_into: kwargs
        parameters: {{type: object, required: [query], properties: {{query: {{type: string}}}}}}
      - name: draft_note
        description: Write a note on a contact.
        task: python
        with: {{function: "{T}:draft_note"}}
        arguments_into: kwargs
        parameters: {{type: object, required: [contact_id, text], properties: {{contact_id: {{type: string}}, text: {{type: string}}}}}}
      - name: update_deal
        description: Change a deal's stage and amount.
        task: python
        with: {{function: "{T}:update_deal"}}
        arguments_into: kwargs
        requires_approval: true
        parameters:
          type: object
          required: [deal_id, stage, amount]
          properties: {{deal_id: {{type: string}}, stage: {{type: string, enum: [qualified, closedwon]}}, amount: {{type: integer}}}}
outputs:
  answer: "{{{{ outputs.assistant.answer }}}}"
"""

SCRIPT = [
    Reply(tool_calls=[{"name": "search_contact", "arguments": {"query": "Ada"}, "id": "t1"}]),
    Reply(tool_calls=[{"name": "draft_note", "arguments": {"contact_id": "C-1", "text": "Called Ada."}, "id": "t2"}]),
    Reply(tool_calls=[{"name": "update_deal", "arguments": {"deal_id": "D-7", "stage": "closedwon", "amount": 5000},
                       "id": "t3"}]),
    Reply("Done: noted the call and closed deal D-7."),
]


def tool_results(request: dict[str, Any]) -> int:
    return sum(1 for m in request["messages"] if m["role"] == "tool")


def scripted(request: dict[str, Any]) -> Reply:
    """The model's answer by how far the conversation got (tool results so far)."""
    return SCRIPT[tool_results(request)]


@pytest.fixture
def fake() -> Any:
    server = FakeOpenAI()
    server.responder = scripted
    with server.serve() as api_base:
        server.api_base = api_base  # type: ignore[attr-defined]
        yield server


def models(api_base: str) -> dict[str, Any]:
    return {"default": "fast", "models": {"fast": {
        "model": "openai/agent-m", "api_base": api_base, "api_key": "none",
        "input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}}}


def engine_for(store: Store, home: Path, fake: Any) -> Any:
    config = ModelsConfig.model_validate(models(fake.api_base))
    client = LLMClient(LLMSettings(models_file=home / "none.yaml", timeout=10, num_retries=0), config)
    engine = make_engine(store, home=home)
    engine.services["llm"] = client
    approvals.install(engine)
    return engine


def _hub(*args: str) -> list[str]:
    return [sys.executable, "-m", "hub.cli", *args]


async def test_sigkill_after_the_second_tool_call_then_resume_and_approve_with_an_edit(store, tmp_path, fake, monkeypatch):
    url = store.engine.url.render_as_string(hide_password=False)
    tool_log = tmp_path / "tools.jsonl"
    flow_file = tmp_path / "crm_assist.yaml"
    flow_file.write_text(FLOW)
    models_file = tmp_path / "models.yaml"
    models_file.write_text(json.dumps(models(fake.api_base)))  # JSON is YAML
    env = dict(os.environ)
    env.pop("HUB_LLM_MODELS", None)
    env.update(HUB_HOME=str(tmp_path / "home"), HUB_DATABASE_URL=url, PYTHONPATH=str(ROOT), HUB_PYTHON_MODULES=T,
               HUB_LLM_MODELS_FILE=str(models_file), AGENT_TOOL_LOG=str(tool_log))
    monkeypatch.setenv("AGENT_TOOL_LOG", str(tool_log))  # this process runs the last tool call
    proc = subprocess.Popen(_hub("run", str(flow_file), "-i", "request=Log my call with Ada and close her deal",
                                 "--flows", str(tmp_path / "none")),
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = threading.Event()

    def kill_at_the_third_turn(request: dict[str, Any]) -> Reply:
        if tool_results(request) == 2 and not killed.is_set():  # both tool results are committed by now
            os.kill(proc.pid, signal.SIGKILL)
            killed.set()
            return Reply("never read", delay=5)
        return scripted(request)

    fake.responder = kill_at_the_third_turn
    try:
        assert proc.wait(60) == -signal.SIGKILL, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    [execution] = store.list_executions(flow_id="crm_assist")
    assert execution["state"] == "RUNNING"
    assert [c["tool"] for c in calls(str(tool_log))] == ["search_contact", "draft_note"]

    resumed = subprocess.run(_hub("resume", "--flows", str(tmp_path / "none")), env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    paused = store.get_execution(execution["id"])
    assert paused["state"] == "PAUSED", paused["error"]
    assert [c["tool"] for c in calls(str(tool_log))] == ["search_contact", "draft_note"]  # no re-run

    # the approval shows the proposed arguments, editable; the edit is what the tool receives
    engine = engine_for(store, tmp_path / "home", fake)
    service = approvals.install(engine)
    [gate] = service.gates()
    assert gate["path"] == "assistant.tools[3].approval"
    assert '"amount": 5000' in gate["message"]
    assert {k: v["default"] for k, v in gate["form"].items()} == {"deal_id": "D-7", "stage": "closedwon", "amount": 5000}
    assert gate["form"]["stage"]["type"] == "enum" and gate["form"]["amount"]["type"] == "number"
    decided = service.decide(gate["id"], ["lead@acme.com"], "api", "approve", form={"amount": 4500})
    await service.after_decision(decided.gate)  # what the API does after a decision: resume the execution
    await engine.queue.drain(include_timers=False)  # type: ignore[attr-defined]

    done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error
    assert done.outputs == {"answer": "Done: noted the call and closed deal D-7."}
    tools = calls(str(tool_log))
    assert [c["tool"] for c in tools] == ["search_contact", "draft_note", "update_deal"]  # each exactly once
    assert tools[2]["arguments"] == {"deal_id": "D-7", "stage": "closedwon", "amount": 4500}
    # the model was asked each answered turn once; only the turn cut by the kill was asked again
    assert sorted(tool_results(r) for r in fake.requests) == [0, 1, 2, 2, 3]
    output = done.step("assistant")["output"]
    assert output["turns"] == 4 and [c["name"] for c in output["tool_calls"]] == ["search_contact", "draft_note",
                                                                                  "update_deal"]
    assert output["tool_calls"][2]["edited"] is True and output["tool_calls"][2]["approval"]["decision"] == "approved"
    assert output["tool_calls"][2]["result"]["amount"] == 4500
    assert [m["role"] for m in output["transcript"]] == [
        "system", "user", "assistant", "tool", "assistant", "tool", "assistant", "tool", "assistant"]
    rows = {r["path"]: r["state"] for r in store.step_runs(execution["id"])}
    assert rows["assistant.tools[1]"] == rows["assistant.turn[4]"] == "SUCCESS"


async def test_max_turns_stops_a_looping_agent_with_its_transcript(store, tmp_path, fake, monkeypatch):
    fake.responder = lambda request: SCRIPT[0]  # searches forever
    monkeypatch.setenv("AGENT_TOOL_LOG", str(tmp_path / "tools.jsonl"))
    engine = engine_for(store, tmp_path / "home", fake)
    flow = load_text(FLOW.replace("    approval:", "    max_turns: 2\n    approval:"))
    execution = await engine.execute(flow, {"request": "find Ada"})
    assert execution["state"] == "FAILED"
    error = result_of(engine, execution["id"]).step("assistant")["error"]
    assert error["type"] == "AgentLimit" and "max_turns 2" in error["message"]
    assert len(error["data"]["tool_calls"]) == 2 and len(fake.requests) == 2


async def test_a_failing_tool_is_an_error_result_for_the_model_not_a_failed_step(store, tmp_path, fake):
    fake.responder = lambda request: (SCRIPT[0] if tool_results(request) == 0 else Reply("Sorry, search is down."))
    os.environ.pop("AGENT_TOOL_LOG", None)  # the tool raises KeyError
    engine = engine_for(store, tmp_path / "home", fake)
    execution = await engine.execute(load_text(FLOW), {"request": "find Ada"})
    assert execution["state"] == "SUCCESS", execution["error"]
    output = result_of(engine, execution["id"]).step("assistant")["output"]
    assert "AGENT_TOOL_LOG" in output["tool_calls"][0]["error"]
    assert json.loads(fake.requests[1]["messages"][-1]["content"])["error"].startswith("TaskError")


def test_tools_needing_approval_need_approvers():
    from hub.errors import FlowError

    with pytest.raises(FlowError, match=r"tools\[2\].requires_approval: tool .update_deal. requires approval"):
        load_text(FLOW.replace("    approval: {approvers: [lead@acme.com]}\n", ""))


async def test_a_gated_tool_call_is_a_child_step_that_racing_decisions_complete_once(store, tmp_path, fake, monkeypatch):

    tool_log = tmp_path / "tools.jsonl"
    monkeypatch.setenv("AGENT_TOOL_LOG", str(tool_log))
    engine = engine_for(store, tmp_path / "home", fake)
    service = approvals.install(engine)

    async def no_resume(execution_id: str) -> None:
        raise AssertionError("a decision ends the gate through its resume token, never engine.resume")

    monkeypatch.setattr(engine, "resume", no_resume)
    execution = await engine.execute(load_text(FLOW), {"request": "close Ada's deal"})
    assert execution["state"] == "PAUSED", execution["error"]
    rows = {r["path"]: r for r in store.step_runs(execution["id"])}
    gate_row = rows["assistant.tools[3].approval"]
    assert gate_row["state"] == "PAUSED" and gate_row["data"]["resume_token"]  # the child holds its own token
    assert rows["assistant"]["state"] == "PAUSED"
    [gate] = service.gates()
    decided = service.decide(gate["id"], ["lead@acme.com"], "api", "approve", form={"amount": 4500})

    # two decisions race (the API's, the sweep's) and a late rejection: exactly one ends the step
    rejected = {**service.outputs(decided.gate), "decision": "rejected", "approved": False}
    won = await asyncio.gather(service.complete_step(decided.gate), service.complete_step(decided.gate),
                               service.sweep())
    assert won[0] + won[1] + len(won[2]) == 1  # exactly one of the three ended the step
    assert await engine.complete(gate_row["data"]["resume_token"], rejected) is False
    await engine.queue.drain(include_timers=False)  # type: ignore[attr-defined]

    done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error
    assert [c["tool"] for c in calls(str(tool_log))] == ["search_contact", "draft_note", "update_deal"]  # once
    output = done.step("assistant")["output"]
    assert output["tool_calls"][2]["approval"]["decision"] == "approved"
    assert output["tool_calls"][2]["result"]["amount"] == 4500
    gate_runs = [r for r in store.step_runs(execution["id"]) if r["path"] == "assistant.tools[3].approval"]
    assert [r["state"] for r in gate_runs] == ["SUCCESS"] and gate_runs[0]["data"]["completed"] is True


async def test_a_decision_landing_before_the_execution_is_written_paused_still_wakes_it(store, tmp_path, fake, monkeypatch):
    from hub.engine import pauses

    tool_log = tmp_path / "tools.jsonl"
    monkeypatch.setenv("AGENT_TOOL_LOG", str(tool_log))
    engine = engine_for(store, tmp_path / "home", fake)
    service = approvals.install(engine)

    def decide_as_the_agent_step_pauses(event: dict[str, Any]) -> None:
        # the agent step is PAUSED, its execution not yet: the window a fast decision may land in
        if event.get("event") == "step" and event["path"] == "assistant" and event["state"] == "PAUSED":
            [gate] = service.gates()
            decided = service.decide(gate["id"], ["lead@acme.com"], "api", "approve")
            token = service.resume_token(decided.gate)
            assert token is not None
            assert pauses.end_step(store, token, service.outputs(decided.gate), None) == (gate["execution_id"], "PAUSED")

    engine.listeners.append(decide_as_the_agent_step_pauses)
    execution = await engine.execute(load_text(FLOW), {"request": "close Ada's deal"})
    engine.listeners.remove(decide_as_the_agent_step_pauses)
    await engine.queue.drain(include_timers=False)  # type: ignore[attr-defined]

    done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error  # the walk saw the child ended and woke the execution
    assert [c["tool"] for c in calls(str(tool_log))] == ["search_contact", "draft_note", "update_deal"]


async def test_a_tool_approval_paused_without_a_token_by_an_older_release_is_adopted_and_completed(store, tmp_path, fake, monkeypatch):
    from sqlalchemy import update

    from hub.store.store import STEPS

    tool_log = tmp_path / "tools.jsonl"
    monkeypatch.setenv("AGENT_TOOL_LOG", str(tool_log))
    engine = engine_for(store, tmp_path / "home", fake)
    service = approvals.install(engine)
    execution = await engine.execute(load_text(FLOW), {"request": "close Ada's deal"})
    [gate_row] = [r for r in store.step_runs(execution["id"]) if r["path"] == "assistant.tools[3].approval"]
    old = {k: v for k, v in gate_row["data"].items() if k != "resume_token"}  # as the release before wrote it
    with store.engine.begin() as conn:
        conn.execute(update(STEPS).where(STEPS.c.id == gate_row["id"]).values(data=old))

    [gate] = service.gates()
    decided = service.decide(gate["id"], ["lead@acme.com"], "api", "approve")
    won = await asyncio.gather(service.complete_step(decided.gate), service.sweep())
    assert won[0] + len(won[1]) == 1  # both adopt the step; exactly one ends it
    await engine.queue.drain(include_timers=False)  # type: ignore[attr-defined]

    done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error
    assert [c["tool"] for c in calls(str(tool_log))] == ["search_contact", "draft_note", "update_deal"]
