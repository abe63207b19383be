"""Sign-in with an API key, the signed session cookie, CSRF, scopes deciding what pages show and
allow, sign-out; and the approvals inbox decided from the console (SQLite and PostgreSQL)."""

from __future__ import annotations

from urllib.parse import unquote

from fastapi.testclient import TestClient

from hub.engine.runner import Engine
from hub.store.api_store import ApiStore
from tests.console.conftest import GREET, REFUND, csrf, deploy, sign_in, text_of, wait_state


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_pages_need_a_key_once_keys_exist_and_sign_in_keeps_it_in_a_strict_cookie(
    secured: TestClient, keys: dict[str, str], engine: Engine
) -> None:
    deploy(secured, GREET, bearer(keys["admin"]))
    first = secured.get("/flows/demo/greet")
    assert first.status_code == 303 and unquote(first.headers["location"]) == "/signin?next=/flows/demo/greet"
    assert secured.get("/v1/flows").status_code == 401  # the API still wants its header

    wrong = sign_in(secured, "hub_not-a-key")
    assert wrong.status_code == 401 and "the API key is unknown or revoked" in text_of(wrong.text)

    signed = sign_in(secured, keys["reader"], "/flows/demo/greet")
    assert signed.status_code == 303 and signed.headers["location"] == "/flows/demo/greet"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith("hub_console=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert keys["reader"] not in cookie  # signed and encoded, not the key in clear
    page = text_of(secured.get("/flows/demo/greet").text)
    assert "Key reader · read" in page and "demo.greet" in page
    assert "Edit" not in page and "Run" not in page  # a read key is shown no action it cannot take


def test_scopes_decide_what_a_signed_in_key_may_do(secured: TestClient, keys: dict[str, str], engine: Engine) -> None:
    deploy(secured, GREET, bearer(keys["admin"]))
    sign_in(secured, keys["reader"])
    token = csrf(secured)
    refused = secured.post("/flows/demo/greet/run", data={"csrf": token, "input.name": "ana"})
    assert refused.status_code == 403 and "lacks the 'run' scope" in text_of(refused.text)
    assert secured.get("/flows/new").status_code == 403
    assert engine.store.list_executions() == []

    sign_in(secured, keys["run"])
    token = csrf(secured)
    assert "Run" in text_of(secured.get("/flows/demo/greet").text)
    ran = secured.post("/flows/demo/greet/run", data={"csrf": token, "input.name": "ana"})
    assert ran.status_code == 303
    execution_id = ran.headers["location"].rsplit("/", 1)[1]
    done = wait_state(engine, execution_id, {"SUCCESS"})
    assert done["trigger"]["started_by"].startswith("key:")  # who started it, as through the API
    saving = secured.post("/flows/-/save", data={"csrf": token, "source": GREET})
    assert saving.status_code == 403 and "lacks the 'admin' scope" in text_of(saving.text)


def test_a_form_without_this_sessions_csrf_token_is_refused(secured: TestClient, keys: dict[str, str]) -> None:
    deploy(secured, GREET, bearer(keys["admin"]))
    sign_in(secured, keys["admin"])
    for token in ("", "forged", None):
        data = {"input.name": "ana"} | ({"csrf": token} if token is not None else {})
        refused = secured.post("/flows/demo/greet/run", data=data)
        assert refused.status_code == 403 and "CSRF token mismatch" in text_of(refused.text)
    other = TestClient(secured.app, follow_redirects=False)
    sign_in(other, keys["admin"])
    stolen = csrf(other)  # another session's token does not fit this one
    assert secured.post("/flows/demo/greet/run", data={"csrf": stolen, "input.name": "x"}).status_code == 403


def test_a_tampered_cookie_or_a_revoked_key_signs_out_and_sign_out_ends_the_session(
    secured: TestClient, keys: dict[str, str], engine: Engine
) -> None:
    sign_in(secured, keys["reader"])
    assert secured.get("/flows").status_code == 200
    value = secured.cookies["hub_console"]
    body, mac = value.rsplit(".", 1)
    forged = TestClient(secured.app, follow_redirects=False, cookies={"hub_console": f"{body}.{mac[::-1]}"})
    assert forged.get("/flows").status_code == 303
    payload = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]  # another payload, the old signature
    forged = TestClient(secured.app, follow_redirects=False, cookies={"hub_console": f"{payload}.{mac}"})
    assert forged.get("/flows").status_code == 303

    sign_in(secured, keys["reader"])
    store = ApiStore(engine.store)
    [row] = [k for k in store.list_keys() if k["name"] == "reader"]
    store.revoke_key(row["id"])
    gone = secured.get("/executions")
    assert gone.status_code == 303 and "notice=revoked" in gone.headers["location"]
    assert "no longer accepted" in text_of(secured.get(gone.headers["location"]).text)

    sign_in(secured, keys["admin"])
    out = secured.post("/signout", data={"csrf": csrf(secured)})
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert 'hub_console=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert secured.get("/flows").status_code == 303


def test_sign_in_goes_back_only_to_this_server(secured: TestClient, keys: dict[str, str]) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "flows"):
        assert sign_in(secured, keys["reader"], target).headers["location"] == "/flows"


def test_the_open_server_needs_no_sign_in(client: TestClient) -> None:
    page = client.get("/flows")
    assert page.status_code == 200 and "Open server (no keys)" in text_of(page.text)
    assert client.get("/signin").headers["location"] == "/flows"


def test_an_approval_is_decided_in_the_inbox_with_its_typed_form(
    secured: TestClient, keys: dict[str, str], engine: Engine
) -> None:
    deploy(secured, REFUND, bearer(keys["admin"]))
    started = secured.post("/v1/flows/support/refund/executions", json={"inputs": {"amount": 42.5}},
                           headers=bearer(keys["run"]))
    execution_id = started.json()["id"]
    assert wait_state(engine, execution_id, {"PAUSED"})["state"] == "PAUSED"

    sign_in(secured, keys["reader"])
    inbox = text_of(secured.get("/approvals", params={"tab": "pending"}).text)
    assert "Refund request" in inbox and "support.refund · review" in inbox and "0 / 1" in inbox
    assert "Refund request" not in text_of(secured.get("/approvals").text)  # not the reader's to decide
    [gate] = secured.get("/v1/approvals", params={"mine": "false"}, headers=bearer(keys["reader"])).json()["items"]
    page = secured.get(f"/approvals/{gate['id']}").text
    assert 'value="42.5"' in page and "Sorry for the trouble." in page  # the draft in its typed form
    assert "Your key lacks the approve scope." in text_of(page) and "Approve" not in text_of(page)

    sign_in(secured, keys["ana"])
    assert "Refund request" in text_of(secured.get("/approvals").text)
    token = csrf(secured)
    bad = secured.post(f"/approvals/{gate['id']}/decide", data={
        "csrf": token, "decision": "approve", "field.amount": "900", "field.note": "ok"})
    assert bad.status_code == 422
    assert "Please correct the marked fields." in text_of(bad.text) and "500" in text_of(bad.text)
    assert engine.store.get_execution(execution_id)["state"] == "PAUSED"

    done = secured.post(f"/approvals/{gate['id']}/decide", data={
        "csrf": token, "decision": "approve", "field.amount": "40", "field.note": "Refunded.", "comment": "fine"})
    assert done.status_code == 303 and done.headers["location"].endswith("done=decided")
    finished = wait_state(engine, execution_id, {"SUCCESS", "FAILED"})
    assert finished["state"] == "SUCCESS" and finished["outputs"] == {"amount": 40.0, "decision": "approved"}
    page = text_of(secured.get(done.headers["location"]).text)
    assert "Your decision closed this request." in page and "approved" in page
    assert "key:ana : approve via console" in page  # the vote, and the audit trail below it
    assert "console key:ana approve accepted" in page
    decided = text_of(secured.get("/approvals", params={"tab": "decided"}).text)
    assert "Refund request" in decided and "approved" in decided
