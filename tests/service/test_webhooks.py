"""Webhook triggers: secret key, HMAC signature with a replay window, Idempotency-Key dedup held in
the database, trigger.* in the flow, ?wait=true."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api.webhooks import sign
from hub.engine.runner import Engine
from tests.service.conftest import assert_error, bearer, deploy, make_client, wait_for

HOOKED = """\
id: hooked
namespace: demo
inputs:
  - {id: email, type: string, required: true}
triggers:
  - {id: keyed, type: webhook, secret: "{{ secret('HOOK_KEY') }}"}
  - id: signed
    type: webhook
    signing_secret: sign-me
    tolerance: 60s
    inputs: {email: "{{ trigger.body.contact.email }}"}
  - {id: plain, type: webhook}
  - {id: paused, type: webhook, secret: x, disabled: true}
tasks:
  - {id: take, type: set, values: {email: "{{ inputs.email }}", source: "{{ trigger.query.source | default('-') }}",
     agent: "{{ trigger.headers['user-agent'] }}"}}
  - {id: done, type: log, message: "{{ outputs.take.email }}"}
outputs: {email: "{{ outputs.take.email }}", source: "{{ outputs.take.source }}"}
"""


@pytest.fixture
def hook(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("HUB_SECRET_HOOK_KEY", "k3y")
    deploy(client, HOOKED)
    return client


def signed(body: dict[str, Any], secret: str = "sign-me", stamp: float | None = None) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    stamp = int(stamp if stamp is not None else time.time())
    return {"content": raw, "headers": {"content-type": "application/json", "X-Hub-Timestamp": str(stamp),
                                        "X-Hub-Signature": sign(secret, stamp, raw)}}


def test_secret_key(hook: TestClient) -> None:
    url = "/v1/webhooks/demo/hooked/keyed"
    ok = hook.post(url, params={"key": "k3y", "source": "crm"}, json={"email": "a@x.io"},
                   headers={"user-agent": "tester"})
    assert ok.status_code == 202 and ok.json()["state"] == "QUEUED"
    done = wait_for(hook, ok.json()["id"])
    assert done["outputs"] == {"email": "a@x.io", "source": "crm"}
    trigger = done["trigger"]
    assert trigger["type"] == "webhook" and trigger["id"] == "keyed" and trigger["body"] == {"email": "a@x.io"}
    assert trigger["query"] == {"source": "crm"}  # the key is not kept
    assert hook.post(url, headers={"X-Hub-Key": "k3y"}, json={"email": "b@x.io"}).status_code == 202

    assert_error(hook.post(url, json={"email": "a@x.io"}), 401, "BadWebhookKey")
    assert_error(hook.post(url, params={"key": "wrong"}, json={"email": "a@x.io"}), 401, "BadWebhookKey")
    error = assert_error(hook.post(url, params={"key": "k3y"}, json={"mail": "a@x.io"}), 422, "InputError")
    assert "email: required input is missing" in error["detail"]
    assert_error(hook.post(url, params={"key": "k3y"}, content="{bad", headers={"content-type": "application/json"}),
                 400, "BadRequest")


def test_signature_and_replay_window(hook: TestClient) -> None:
    url = "/v1/webhooks/demo/hooked/signed"
    body = {"contact": {"email": "s@x.io"}}
    ok = hook.post(url, params={"wait": "true"}, **signed(body))
    assert ok.status_code == 200 and ok.json()["state"] == "SUCCESS"
    assert ok.json()["outputs"]["email"] == "s@x.io"

    assert_error(hook.post(url, **signed(body, secret="other")), 401, "BadSignature")
    stale = assert_error(hook.post(url, **signed(body, stamp=time.time() - 120)), 401, "StaleTimestamp")
    assert "60s replay window" in stale["detail"]
    assert_error(hook.post(url, **signed(body, stamp=time.time() + 120)), 401, "StaleTimestamp")
    tampered = signed(body)
    tampered["content"] = json.dumps({"contact": {"email": "evil@x.io"}}).encode()
    assert_error(hook.post(url, **tampered), 401, "BadSignature")
    assert_error(hook.post(url, json=body), 401, "BadSignature")
    bad_stamp = signed(body)
    bad_stamp["headers"]["X-Hub-Timestamp"] = "soon"
    assert_error(hook.post(url, **bad_stamp), 401, "BadSignature")


def test_idempotency_key(hook: TestClient, engine: Engine) -> None:
    url = "/v1/webhooks/demo/hooked/keyed?key=k3y"
    first = hook.post(url, json={"email": "i@x.io"}, headers={"Idempotency-Key": "evt-1"})
    again = hook.post(url, json={"email": "i@x.io"}, headers={"Idempotency-Key": "evt-1"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.json()["replayed"] is True
    error = assert_error(hook.post(url, json={"email": "other@x.io"}, headers={"Idempotency-Key": "evt-1"}),
                         422, "IdempotencyKeyReused")
    assert "different body" in error["detail"]
    wait_for(hook, first.json()["id"])
    assert len(hook.get("/v1/executions", params={"flow": "demo.hooked"}).json()["items"]) == 1

    # held in the database: a second server sees the same key
    with make_client(engine, auth="open") as other_server:
        replay = other_server.post(url, json={"email": "i@x.io"}, headers={"Idempotency-Key": "evt-1"})
        assert replay.json()["id"] == first.json()["id"]
    # after 24 h the key is free again
    from hub.store.api_store import IDEMPOTENCY

    with engine.store.engine.begin() as conn:
        conn.execute(IDEMPOTENCY.update().values(created_at=time.time() - 25 * 3600))
    fresh = hook.post(url, json={"email": "other@x.io"}, headers={"Idempotency-Key": "evt-1"})
    assert fresh.status_code == 202 and fresh.json()["id"] != first.json()["id"]

    # a request that failed on its inputs does not hold the key
    assert_error(hook.post(url, json={"nope": 1}, headers={"Idempotency-Key": "evt-2"}), 422)
    assert hook.post(url, json={"email": "n@x.io"}, headers={"Idempotency-Key": "evt-2"}).status_code == 202


def test_unsigned_trigger_needs_an_api_key(engine: Engine, keys: dict[str, str], secured: TestClient) -> None:
    deploy(secured, HOOKED, headers=bearer(keys["admin"]))
    url = "/v1/webhooks/demo/hooked/plain"
    assert_error(secured.post(url, json={"email": "p@x.io"}), 401)
    assert_error(secured.post(url, json={"email": "p@x.io"}, headers=bearer(keys["read"])), 403)
    assert secured.post(url, json={"email": "p@x.io"}, headers=bearer(keys["run"])).status_code == 202


def test_unknown_and_disabled_triggers(hook: TestClient) -> None:
    assert_error(hook.post("/v1/webhooks/demo/hooked/nope", json={}), 404, "NotFound")
    assert_error(hook.post("/v1/webhooks/demo/missing/keyed", json={}), 404, "NotFound")
    assert_error(hook.post("/v1/webhooks/demo/hooked/paused?key=x", json={}), 409, "TriggerDisabled")
    hook.post("/v1/flows/demo/hooked/disable")
    assert_error(hook.post("/v1/webhooks/demo/hooked/keyed?key=k3y", json={"email": "a@x.io"}), 409, "FlowDisabled")


def test_a_start_that_fails_in_the_database_does_not_keep_the_idempotency_key(
    hook: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key and the execution are written in one transaction: when the execution cannot be
    inserted (here a real constraint violation, as a database error or a process dying before the
    commit would leave it), the key is not taken and the sender's retry starts the execution."""
    import hub.api.webhooks

    url = "/v1/webhooks/demo/hooked/keyed?key=k3y"
    taken = hook.post(url, json={"email": "first@x.io"}).json()["id"]
    fresh_id = hub.api.webhooks.new_id
    monkeypatch.setattr(hub.api.webhooks, "new_id", lambda: taken)  # the INSERT breaks the primary key
    failed = hook.post(url, json={"email": "i@x.io"}, headers={"Idempotency-Key": "evt-lost"})
    assert failed.status_code >= 500
    monkeypatch.setattr(hub.api.webhooks, "new_id", fresh_id)

    retry = hook.post(url, json={"email": "i@x.io"}, headers={"Idempotency-Key": "evt-lost"})
    assert retry.status_code == 202, retry.text
    assert retry.json()["replayed"] is False and retry.json()["id"] != taken
    assert wait_for(hook, retry.json()["id"])["outputs"]["email"] == "i@x.io"
    again = hook.post(url, json={"email": "i@x.io"}, headers={"Idempotency-Key": "evt-lost"})
    assert again.json() == {**again.json(), "id": retry.json()["id"], "replayed": True}
