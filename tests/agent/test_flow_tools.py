"""llm.agent with a flow as a tool: its inputs are the tool's schema, each call a child execution."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.flow.loader import load_text
from hub.llm.fake import Reply
from hub.testing import result_of
from tests.agent.test_agent import engine_for, fake, tool_results  # noqa: F401  (fake: a fixture)

pytestmark = pytest.mark.anyio

LOOKUP = """
id: lookup_order
namespace: shop
description: Look an order up by its number.
inputs:
  - {id: order, type: string, required: true, description: The order number.}
  - {id: region, type: enum, values: [eu, us], default: eu}
  - {id: tenant, type: string, required: true}
tasks:
  - {id: found, type: set, values: {status: shipped, order: "{{ inputs.order }}", region: "{{ inputs.region }}",
                                    tenant: "{{ inputs.tenant }}"}}
  - {id: nope, type: fail, if: "{{ inputs.order == 'BAD' }}", message: "no order {{ inputs.order }}"}
outputs:
  status: "{{ outputs.found.status }}"
  where: "{{ outputs.found.region }}/{{ outputs.found.tenant }}"
"""

AGENT = """
id: support
namespace: shop
inputs: [{id: request, type: string}]
tasks:
  - id: assistant
    type: llm.agent
    model: fast
    instructions: You answer questions about orders.
    input: "{{ inputs.request }}"
    tools:
      - flow: lookup_order
        with: {tenant: acme}
outputs:
  answer: "{{ outputs.assistant.answer }}"
"""


def script(order: str) -> Any:
    def answer(request: dict[str, Any]) -> Reply:
        if tool_results(request) == 0:
            return Reply(tool_calls=[{"name": "lookup_order", "arguments": {"order": order}, "id": "f1"}])
        return Reply("Your order has shipped.")
    return answer


async def test_a_flow_is_a_tool_run_as_a_child_execution(store, tmp_path, fake):  # noqa: F811
    fake.responder = script("A-1")
    engine = engine_for(store, tmp_path / "home", fake)
    engine.deploy(load_text(LOOKUP))
    execution = await engine.execute(load_text(AGENT), {"request": "where is A-1?"})
    assert execution["state"] == "SUCCESS", execution["error"]
    [tool] = fake.requests[0]["tools"]
    assert tool["function"]["name"] == "lookup_order"
    assert tool["function"]["description"] == "Look an order up by its number."
    schema = tool["function"]["parameters"]
    assert schema["required"] == ["order"] and set(schema["properties"]) == {"order", "region"}  # tenant is fixed
    assert schema["properties"]["region"] == {"enum": ["eu", "us"], "default": "eu"}
    call = result_of(engine, execution["id"]).step("assistant")["output"]["tool_calls"][0]
    assert call["result"]["outputs"] == {"status": "shipped", "where": "eu/acme"}
    [child] = store.list_executions(flow_id="lookup_order")
    assert child["id"] == call["result"]["execution_id"] and child["state"] == "SUCCESS"
    assert child["parent_id"] == execution["id"] and child["trigger"]["type"] == "subflow"
    assert child["inputs"] == {"order": "A-1", "region": "eu", "tenant": "acme"}
    assert json.loads(fake.requests[1]["messages"][-1]["content"])["outputs"]["status"] == "shipped"


async def test_a_failed_child_is_the_models_tool_error(store, tmp_path, fake):  # noqa: F811
    fake.responder = script("BAD")
    engine = engine_for(store, tmp_path / "home", fake)
    engine.deploy(load_text(LOOKUP))
    execution = await engine.execute(load_text(AGENT), {"request": "where is BAD?"})
    assert execution["state"] == "SUCCESS", execution["error"]
    error = json.loads(fake.requests[1]["messages"][-1]["content"])["error"]
    assert "flow shop.lookup_order" in error and "ended FAILED" in error and "no order BAD" in error
    [child] = store.list_executions(flow_id="lookup_order")
    assert child["state"] == "FAILED"


async def test_an_undeployed_flow_tool_fails_the_step_saying_so(store, tmp_path, fake):  # noqa: F811
    engine = engine_for(store, tmp_path / "home", fake)
    execution = await engine.execute(load_text(AGENT), {"request": "x"})
    assert execution["state"] == "FAILED"
    error = result_of(engine, execution["id"]).step("assistant")["error"]
    assert "flow tool 'lookup_order'" in error["message"] and "deploy the flow first" in error["message"]
    assert fake.requests == []


REFUND = """
id: refund_order
namespace: shop
description: Refund an order, once a manager approves.
inputs:
  - {id: order, type: string, required: true}
tasks:
  - id: ok
    type: approval
    approvers: [lead@acme.com]
    message: "Refund {{ inputs.order }}?"
  - {id: done, type: set, values: {refunded: "{{ inputs.order }}"}}
outputs:
  refunded: "{{ outputs.done.refunded }}"
"""


async def test_a_flow_tool_whose_child_pauses_pauses_the_agent_until_the_child_ends(store, tmp_path, fake):  # noqa: F811
    """The child waits for an approval: the agent step pauses with it, the model is not asked
    again meanwhile; once the child ends, the agent resumes, reads the child's outputs as the
    tool's result and answers, the child run once."""
    from hub import approvals

    def answer(request: dict[str, Any]) -> Reply:
        if tool_results(request) == 0:
            return Reply(tool_calls=[{"name": "refund_order", "arguments": {"order": "A-7"}, "id": "r1"}])
        return Reply("Refunded.")

    fake.responder = answer
    engine = engine_for(store, tmp_path / "home", fake)
    engine.deploy(load_text(REFUND))
    agent = AGENT.replace("id: support", "id: refunds").replace(
        "      - flow: lookup_order\n        with: {tenant: acme}\n", "      - flow: refund_order\n")
    execution = await engine.execute(load_text(agent), {"request": "refund A-7"})
    assert execution["state"] == "PAUSED", execution["error"]
    [child] = store.list_executions(flow_id="refund_order")
    assert child["state"] == "PAUSED" and child["parent_id"] == execution["id"]
    assert len(fake.requests) == 1  # the model waits with the tool call

    service = approvals.install(engine)
    [gate] = service.gates()
    assert gate["execution_id"] == child["id"]
    decided = service.decide(gate["id"], ["lead@acme.com"], "api", "approve")
    await service.after_decision(decided.gate)
    await engine.queue.drain(include_timers=False)  # type: ignore[attr-defined]

    done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error
    assert done.outputs == {"answer": "Refunded."}
    call = done.step("assistant")["output"]["tool_calls"][0]
    assert call["result"]["outputs"] == {"refunded": "A-7"} and call["result"]["execution_id"] == child["id"]
    assert [e["state"] for e in store.list_executions(flow_id="refund_order")] == ["SUCCESS"]  # one child
    assert len(fake.requests) == 2
    assert json.loads(fake.requests[1]["messages"][-1]["content"])["outputs"] == {"refunded": "A-7"}


def test_an_agent_without_a_kind_it_runs_through_says_which_plugin_is_missing():
    from hub.agent.toolset import needed_kind
    from hub.core.registry import Registry
    from hub.errors import TaskError

    with pytest.raises(TaskError, match=r"needs the 'llm.chat' task kind, which the llm plugin gives") as raised:
        needed_kind(Registry(), "llm.chat", "llm")  # a registry with no plugin loaded
    assert raised.value.retryable is False
