"""API keys: no key -> 401, a key without the scope -> 403, revoked -> 401; keys hashed at rest;
the open (no key) mode; the ``hub keys`` commands."""

from __future__ import annotations

from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.engine.runner import Engine
from hub.store.api_store import KEYS, ApiStore
from tests.service.conftest import HELLO, YAML, assert_error, bearer, make_client


def test_every_endpoint_needs_a_key(secured: TestClient, keys: dict[str, str]) -> None:
    for method, path in [("GET", "/v1/flows"), ("POST", "/v1/flows"), ("GET", "/v1/executions"),
                         ("GET", "/v1/executions/x"), ("POST", "/v1/enrich/demo/hello"), ("GET", "/v1/keys")]:
        error = assert_error(secured.request(method, path), 401, "Unauthorized")
        assert "hub keys create" in error["detail"]
    assert secured.get("/v1/flows", headers=bearer(keys["admin"])).status_code == 200
    assert secured.get("/v1/flows", headers={"X-API-Key": keys["read"]}).status_code == 200
    assert_error(secured.get("/v1/flows", headers=bearer("hub_0000_wrong")), 401)
    assert_error(secured.get("/v1/flows", headers=bearer(keys["read"] + "x")), 401)
    assert_error(secured.get("/v1/flows", headers=bearer("not-a-key")), 401)
    # health and readiness need none
    assert secured.get("/health").json()["status"] == "ok"
    assert secured.get("/ready").status_code == 200


def test_scopes(secured: TestClient, keys: dict[str, str]) -> None:
    write = secured.post("/v1/flows", content=HELLO, headers={**YAML, **bearer(keys["run"])})
    assert "lacks the 'admin' scope" in assert_error(write, 403, "Forbidden")["detail"]
    assert secured.post("/v1/flows", content=HELLO, headers={**YAML, **bearer(keys["admin"])}).status_code == 201

    start = "/v1/flows/demo/hello/executions"
    assert_error(secured.post(start, json={}, headers=bearer(keys["read"])), 403)
    assert_error(secured.post(start, json={}, headers=bearer(keys["approve"])), 403)
    assert secured.post(start, json={}, headers=bearer(keys["run"])).status_code == 201
    assert secured.get("/v1/executions", headers=bearer(keys["approve"])).status_code == 200
    assert_error(secured.post("/v1/enrich/demo/hello", json={}, headers=bearer(keys["read"])), 403)
    assert secured.post("/v1/enrich/demo/hello", json={}, headers=bearer(keys["run"])).status_code == 200
    assert_error(secured.get("/v1/keys", headers=bearer(keys["run"])), 403)


def test_keys_are_hashed_and_revocable(secured: TestClient, keys: dict[str, str], engine: Engine) -> None:
    created = secured.post("/v1/keys", json={"name": "ci", "scopes": ["read"]}, headers=bearer(keys["admin"]))
    assert created.status_code == 201
    token, key_id = created.json()["key"], created.json()["id"]
    with engine.store.engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(select(KEYS.c.id, KEYS.c.key_hash))]
    assert all(token not in str(row) for row in stored) and any(key_id == row[0] for row in stored)
    listed = secured.get("/v1/keys", headers=bearer(keys["admin"])).json()
    assert {k["name"] for k in listed} >= {"ci", "test-admin"} and all("key" not in k for k in listed)

    assert secured.get("/v1/flows", headers=bearer(token)).status_code == 200
    revoked = secured.delete(f"/v1/keys/{key_id}", headers=bearer(keys["admin"]))
    assert revoked.json()["revoked_at"] is not None
    assert_error(secured.get("/v1/flows", headers=bearer(token)), 401)
    assert_error(secured.delete("/v1/keys/nope", headers=bearer(keys["admin"])), 404)
    assert_error(secured.post("/v1/keys", json={"name": "x", "scopes": ["root"]}, headers=bearer(keys["admin"])), 422)


def test_open_until_a_key_exists_and_bootstrap_key(engine: Engine) -> None:
    with make_client(engine, auth="auto") as client:
        assert client.get("/v1/flows").status_code == 200  # no key configured: open (localhost mode)
        ApiStore(engine.store).create_key("first", ["read"])
        client.app.state.hub._keys_checked = 0.0  # the 2 s recheck, now
        assert_error(client.get("/v1/flows"), 401)

    from hub.api.context import ApiSettings

    with make_client(engine, auth="required", settings=ApiSettings(admin_key="boot-secret")) as client:
        assert client.get("/v1/keys", headers=bearer("boot-secret")).status_code == 200
        assert_error(client.get("/v1/keys", headers=bearer("boot-secretx")), 401)


def test_keys_cli(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from hub.cli import main

    monkeypatch.setenv("HUB_HOME", str(tmp_path / "clihome"))
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "ops", "--scope", "run", "--scope", "read"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[0]
    assert token.startswith("hub_")
    listed = runner.invoke(main, ["keys", "list"])
    assert "ops" in listed.output and "read,run" in listed.output and token not in listed.output
    key_id = token.split("_")[1]
    assert runner.invoke(main, ["keys", "revoke", key_id]).exit_code == 0
    assert "revoked" in runner.invoke(main, ["keys", "list"]).output
    assert runner.invoke(main, ["keys", "revoke", "nope"]).exit_code == 1
    bad = runner.invoke(main, ["keys", "create", "x", "--scope", "root"])
    assert bad.exit_code == 2


def test_serve_refuses_open_non_loopback(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from hub.cli import main

    monkeypatch.setenv("HUB_HOME", str(tmp_path / "servehome"))
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "refusing to serve on 0.0.0.0 without authentication" in result.output
