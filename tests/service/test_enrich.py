"""The enrichment API: synchronous outputs, 202 past the timeout, batches in order with per-item
errors, the per-flow response cache, the per-key rate limit."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hub.api.context import ApiSettings
from hub.engine.runner import Engine
from tests.service.conftest import assert_error, bearer, deploy, make_client, wait_for

COUNTED = """\
id: counted
namespace: demo
labels: {enrich_cache_ttl: 10m}
inputs:
  - {id: domain, type: string, required: true}
tasks:
  - {id: look, type: python, function: "tests.service.steps:count", args: ["{{ inputs.domain }}"]}
  - {id: check, type: fail, message: "bad domain", if: "{{ inputs.domain == 'bad.io' }}"}
outputs: {domain: "{{ inputs.domain }}", calls: "{{ outputs.look.calls }}"}
"""

SLOW = """\
id: slow
namespace: demo
inputs:
  - {id: seconds, type: float, default: 1}
tasks:
  - {id: nap, type: python, function: "tests.service.steps:slow", args: ["{{ inputs.seconds }}"]}
outputs: {done: "{{ outputs.nap }}"}
"""


def test_sync_outputs_and_failure(client: TestClient) -> None:
    deploy(client)
    ok = client.post("/v1/enrich/demo/hello", json={"name": "ana"})
    assert ok.status_code == 200
    body = ok.json()
    assert body["outputs"] == {"greeting": "hi ana"} and body["state"] == "SUCCESS" and body["cached"] is False
    assert ok.headers["X-Hub-Execution-Id"] == body["id"]
    assert client.get(f"/v1/executions/{body['id']}").json()["trigger"] == {"type": "enrich"}

    deploy(client, COUNTED)
    failed = assert_error(client.post("/v1/enrich/demo/counted", json={"domain": "bad.io"}), 422, "ExecutionFailed")
    assert "ended FAILED at step check" in failed["detail"] and "bad domain" in failed["details"][0]["message"]
    assert failed["state"] == "FAILED" and client.get(f"/v1/executions/{failed['execution_id']}").json()["state"] == "FAILED"
    assert_error(client.post("/v1/enrich/demo/counted", json={}), 422, "InputError")
    assert_error(client.post("/v1/enrich/demo/counted", json=[1, 2]), 422)
    assert_error(client.post("/v1/enrich/demo/nope", json={}), 404, "NotFound")


def test_past_the_timeout_is_202_and_runs_on(client: TestClient) -> None:
    deploy(client, SLOW)
    pending = client.post("/v1/enrich/demo/slow", params={"timeout": 0.05}, json={"seconds": 0.5})
    assert pending.status_code == 202 and pending.json()["state"] in ("QUEUED", "RUNNING")
    done = wait_for(client, pending.json()["id"])
    assert done["state"] == "SUCCESS" and done["outputs"] == {"done": "slept"}


def test_batch_in_order_with_item_errors(client: TestClient) -> None:
    deploy(client, COUNTED)
    items = [{"domain": "a.io"}, {"domain": "bad.io"}, {"nope": 1}, {"domain": "b.io"}]
    result = client.post("/v1/enrich/demo/counted/batch", json={"items": items}, params={"cache": "false"})
    assert result.status_code == 200
    got = result.json()["items"]
    assert [g["index"] for g in got] == [0, 1, 2, 3]
    assert got[0]["outputs"]["domain"] == "a.io" and got[3]["outputs"]["domain"] == "b.io"
    assert got[1]["error"]["type"] == "ExecutionFailed" and got[1]["id"]
    assert got[2]["error"]["type"] == "InputError" and got[2]["id"] is None
    assert got[0]["error"] is None

    small = make_client(client.app.state.hub.engine, auth="open",
                        settings=ApiSettings(enrich_batch_max=2, enrich_timeout=5))
    with small:
        assert_error(small.post("/v1/enrich/demo/counted/batch", json={"items": items}), 422)
    assert_error(client.post("/v1/enrich/demo/counted/batch", json={"items": "x"}), 422)


def test_response_cache(client: TestClient) -> None:
    from tests.service import steps

    steps.CALLS.clear()
    deploy(client, COUNTED)
    first = client.post("/v1/enrich/demo/counted", json={"domain": "c.io"}).json()
    second = client.post("/v1/enrich/demo/counted", json={"domain": "c.io"}).json()
    assert first["cached"] is False and second["cached"] is True
    assert second["outputs"] == first["outputs"] and second["id"] == first["id"]
    assert steps.CALLS == {"c.io": 1}
    other = client.post("/v1/enrich/demo/counted", json={"domain": "d.io"}).json()
    assert other["cached"] is False
    bypass = client.post("/v1/enrich/demo/counted", params={"cache": "false"}, json={"domain": "c.io"}).json()
    assert bypass["cached"] is False and steps.CALLS["c.io"] == 2
    # a failure is not cached; a flow without the label is never cached
    client.post("/v1/enrich/demo/counted", json={"domain": "bad.io"})
    client.post("/v1/enrich/demo/counted", json={"domain": "bad.io"})
    assert steps.CALLS["bad.io"] == 2
    deploy(client)
    assert client.post("/v1/enrich/demo/hello", json={}).json()["cached"] is False
    assert client.post("/v1/enrich/demo/hello", json={}).json()["cached"] is False


def test_rate_limit_per_key(engine: Engine, keys: dict[str, str]) -> None:
    settings = ApiSettings(rate_limit=0.5, rate_burst=2, enrich_timeout=5)
    with make_client(engine, auth="auto", settings=settings) as client:
        deploy(client, headers=bearer(keys["admin"]))
        for _ in range(2):
            assert client.post("/v1/enrich/demo/hello", json={}, headers=bearer(keys["run"])).status_code == 200
        limited = client.post("/v1/enrich/demo/hello", json={}, headers=bearer(keys["run"]))
        error = assert_error(limited, 429, "TooManyRequests")
        assert int(limited.headers["Retry-After"]) >= 1 and "rate limit" in error["detail"]
        # another key has its own bucket
        assert client.post("/v1/enrich/demo/hello", json={}, headers=bearer(keys["admin"])).status_code == 200
