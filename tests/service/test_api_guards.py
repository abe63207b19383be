"""What the API refuses, and how: bodies over the limits (413), text the database cannot store
(422 naming the field, on SQLite and PostgreSQL), alias bombs and recursive aliases in flows,
timestamps that are not integer seconds, and numbers no database column holds (4xx, never 500)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.api.context import ApiSettings
from hub.api.webhooks import sign
from hub.engine.runner import Engine
from hub.store.api_store import ApiStore
from hub.store.store import Store
from hub.testing import make_engine
from tests.flow.test_yaml_safety import bomb
from tests.service.conftest import HELLO, YAML, assert_error, deploy, make_client, wait_for

JSON = {"content-type": "application/json"}

HOOKS = """\
id: hooks
namespace: demo
triggers:
  - {id: plain, type: webhook}
  - {id: signed, type: webhook, signing_secret: sign-me, tolerance: 60s}
tasks:
  - {id: say, type: log, message: "{{ trigger.body }}"}
"""


@pytest.fixture
def small(engine: Engine) -> TestClient:
    """An open API with small body limits: 2,000 bytes of flow, 5,000 bytes of any body."""
    client = make_client(engine, auth="open", settings=ApiSettings(max_flow_body=2_000, max_body=5_000))
    with client:
        deploy(client, HELLO)
        deploy(client, HOOKS)
        yield client


# -- item 1: alias bombs, body limits ----------------------------------------------------------


@pytest.mark.parametrize("levels", [7, 8])
def test_validate_refuses_an_alias_bomb_at_once(client: TestClient, levels: int) -> None:
    started = time.process_time()
    response = client.post("/v1/flows/validate", content=bomb(levels), headers=YAML)
    assert time.process_time() - started < 1.0  # (CPU time: 17 s and 2.8 GB before)
    body = response.json()
    assert response.status_code == 200 and body["valid"] is False
    assert "aliases expand to more than 10000 values" in body["errors"][0]["message"]
    assert client.get("/health").status_code == 200


def test_a_flow_over_the_flow_limit_is_413(small: TestClient) -> None:
    big = HELLO + "# " + "x" * 2_000 + "\n"
    error = assert_error(small.post("/v1/flows/validate", content=big, headers=YAML), 413)
    assert "the flow is larger than 2000 bytes" in error["detail"] and "HUB_API_MAX_FLOW_BODY" in error["detail"]
    assert_error(small.post("/v1/flows", content=big, headers=YAML), 413)
    deployed = small.post("/v1/flows/deploy", json={"flows": [{"file": "flows/big.yaml", "source": big}]})
    assert "flows/big.yaml is larger than 2000 bytes" in assert_error(deployed, 413)["detail"]


def test_any_body_over_the_limit_is_413_before_it_is_read(small: TestClient) -> None:
    inputs = {"inputs": {"name": "x" * 6_000}}
    error = assert_error(small.post("/v1/flows/demo/hello/executions", json=inputs), 413)
    assert "larger than 5000 bytes" in error["detail"] and "HUB_API_MAX_BODY" in error["detail"]
    webhook = small.post("/v1/webhooks/demo/hooks/plain", content=b"x" * 6_000, headers={"content-type": "text/plain"})
    assert_error(webhook, 413)

    def chunks():  # no Content-Length: refused once the chunks pass the limit
        for _ in range(10):
            yield b"x" * 1_000

    assert_error(small.post("/v1/webhooks/demo/hooks/plain", content=chunks(), headers={"content-type": "text/plain"}),
                 413)
    assert small.post("/v1/flows/demo/hello/executions", json={"inputs": {"name": "ok"}}).status_code == 201


# -- item 4: text the database cannot store (SQLite and PostgreSQL) ------------------------------


@pytest.mark.parametrize(("escaped", "what"), [("\\ud800", "a lone surrogate (\\ud800)"), ("a\\u0000b", "a NUL character")])
def test_unstorable_text_is_422_naming_the_field(small: TestClient, escaped: str, what: str) -> None:
    webhook = small.post("/v1/webhooks/demo/hooks/plain", content=f'{{"ticket": {{"body": "{escaped}"}}}}',
                         headers=JSON)
    error = assert_error(webhook, 422)
    assert error["details"][0]["path"] == "body.ticket.body" and what in error["detail"]
    started = small.post("/v1/flows/demo/hello/executions", content=f'{{"inputs": {{"name": "{escaped}"}}}}',
                         headers=JSON)
    assert assert_error(started, 422)["details"][0]["path"] == "body.inputs.name"
    enriched = small.post("/v1/enrich/demo/hello", content=f'{{"name": "{escaped}"}}', headers=JSON)
    assert assert_error(enriched, 422)["details"][0]["path"] == "body.name"
    source = json.dumps({"flows": [{"file": "f.yaml", "source": HELLO.replace("world", "\ud800" if "d8" in escaped else "\0")}]})
    deployed = small.post("/v1/flows/deploy", content=source, headers=JSON)
    assert assert_error(deployed, 422)["details"][0]["path"] == "body.flows[0].source"
    in_yaml = small.post("/v1/flows/validate", content=HELLO.replace("world", f'"{escaped}"'), headers=YAML).json()
    assert in_yaml["valid"] is False and in_yaml["errors"][0]["line"] == 5
    assert_error(small.get("/v1/flows/a%00b/hello"), 422)
    assert_error(small.post("/v1/webhooks/demo/hooks/plain?source=a%00", json={}), 422)
    listed = small.get("/v1/executions")  # nothing unreadable was stored
    assert listed.status_code == 200 and listed.json()["items"] == []


# -- item 7: X-Hub-Timestamp is integer seconds --------------------------------------------------


@pytest.mark.parametrize("stamp", ["nan", "NaN", "inf", "-inf", "1e12", "+{now}", "{now}.5", " {now}", "-1", "١٢٣"])
def test_a_timestamp_that_is_not_integer_seconds_is_refused(small: TestClient, stamp: str) -> None:
    stamp = stamp.format(now=int(time.time()))
    raw = b'{"a": 1}'
    headers = {**JSON, "X-Hub-Timestamp": stamp, "X-Hub-Signature": sign("sign-me", stamp, raw)}
    try:
        response = small.post("/v1/webhooks/demo/hooks/signed", content=raw, headers=headers)
    except UnicodeEncodeError:  # (a non-ASCII header cannot even be sent)
        return
    error = assert_error(response, 401, "BadSignature")
    assert "integer" in error["detail"]


def test_an_integer_timestamp_in_the_window_is_accepted(small: TestClient) -> None:
    raw, stamp = b'{"a": 1}', str(int(time.time()))
    headers = {**JSON, "X-Hub-Timestamp": stamp, "X-Hub-Signature": sign("sign-me", stamp, raw)}
    assert small.post("/v1/webhooks/demo/hooks/signed", content=raw, headers=headers).status_code == 202


# -- item 11: 4xx, never 500 --------------------------------------------------------------------

HUGE = "1634698391581200595332104192"


def test_numbers_no_column_holds_are_4xx(small: TestClient) -> None:
    assert_error(small.get(f"/v1/flows/demo/hello/diff?from={HUGE}"), 422)
    assert_error(small.get(f"/v1/flows/demo/hello/diff?from=1&to={HUGE}"), 422)
    assert_error(small.get(f"/v1/flows/demo/hello?revision={2**40}"), 422)
    assert_error(small.get(f"/v1/email/outbox?offset={HUGE}"), 422)
    assert_error(small.get(f"/v1/email/messages?offset={HUGE}"), 422)


@pytest.mark.parametrize("depth", [200, 1000, 5000])
def test_json_nested_deep_is_4xx(small: TestClient, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    for url, body in (("/v1/flows/demo/hello/executions", f'{{"inputs": {{"name": {deep}}}}}'),
                      ("/v1/enrich/demo/hello", f'{{"name": {deep}}}'),
                      ("/v1/webhooks/demo/hooks/plain", deep)):
        response = small.post(url, content=body, headers=JSON)
        assert response.status_code in (400, 413, 422), (url, response.text)
        assert_error(response, response.status_code)


def test_a_recursive_alias_is_an_invalid_flow(client: TestClient) -> None:
    body = client.post("/v1/flows/validate", content="a: &r [*r]\n", headers=YAML).json()
    assert body["valid"] is False
    assert body["errors"][0]["message"] == "invalid YAML: the alias *r is inside its own anchor (a value containing itself)"
    assert_error(client.post("/v1/flows", content="id: x\ntasks: &r [*r]\n", headers=YAML), 422)


def test_prompt_versions_beyond_any_column_or_not_ascii_are_404(store: Store, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "greet.yaml").write_text("name: greet\nmessages: [{role: user, content: hi}]\n")
    with make_client(make_engine(store, home=tmp_path / "home", prompts_dir=prompts), auth="open") as client:
        assert client.post("/v1/prompts/sync").status_code == 200
        assert_error(client.get("/v1/prompts/greet/versions/%C2%B3"), 404)  # '³' is a digit to str.isdigit
        assert_error(client.get(f"/v1/prompts/greet/versions/{HUGE}"), 404)
        assert_error(client.post("/v1/prompts/greet/promote", json={"from": int(HUGE)}), 404)
        assert_error(client.put("/v1/prompts/greet/labels/staging", json={"version": int(HUGE)}), 404)
        assert_error(client.put("/v1/prompts/greet/labels/staging", json={"version": f"v{HUGE}"}), 404)
        assert client.put("/v1/prompts/greet/labels/staging", json={"version": 1}).json()["version"] == 1


def test_the_api_keys_of_a_bad_body_are_not_needed_to_refuse_it(engine: Engine) -> None:
    """With keys on, an unauthenticated request is still 401 (not 413/422 telling it more)."""
    ApiStore(engine.store).create_key("k", ["admin"])
    with make_client(engine, auth="auto") as client:
        response = client.post("/v1/flows/validate", content=bomb(8), headers=YAML)
        assert_error(response, 401)


def test_an_execution_started_before_still_runs(small: TestClient) -> None:
    started = small.post("/v1/flows/demo/hello/executions", json={"inputs": {"name": "Ada"}}).json()
    assert wait_for(small, started["id"])["outputs"] == {"greeting": "hi Ada"}
