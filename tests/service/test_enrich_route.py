"""The enrichment call's hot path (:mod:`hub.api.enrich_route`) answers every call exactly as the
FastAPI route does: the same call is sent to the API with and without it and the answers compared;
the calls it does not read itself go on to the FastAPI route."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api import enrich_route
from hub.api.enrich_route import EnrichRoute
from hub.engine.runner import Engine
from tests.service.conftest import bearer, deploy, make_client

JSON = {"content-type": "application/json"}
# (query, body, content type, whether the hot path reads it itself)
CALLS: list[tuple[str, bytes, str | None, bool]] = [
    ("", b'{"name": "ana"}', "application/json", True),
    ("?cache=false&timeout=5", b'{"name": "ana"}', "application/json", True),
    ("?cache=OFF&timeout=0.5&other=1", b'{"name": "ana"}', "application/json", True),
    ("", b'{"nope": 1}', "application/json", True),  # the flow's input error
    ("", b'{"name": "a\\u0000b"}', "application/json", True),  # text the database cannot store
    ("?x=%00", b'{"name": "ana"}', "application/json", True),
    ("?timeout=0", b'{"name": "ana"}', "application/json", False),
    ("?timeout=5000", b'{"name": "ana"}', "application/json", False),
    ("?timeout=abc", b'{"name": "ana"}', "application/json", False),
    ("?timeout=1e1", b'{"name": "ana"}', "application/json", False),
    ("?cache=maybe", b'{"name": "ana"}', "application/json", False),
    ("?cache=true&cache=false", b'{"name": "ana"}', "application/json", False),
    ("", b"[1, 2]", "application/json", False),
    ("", b'{"name": ', "application/json", False),
    ("", b"", "application/json", False),
    ("", b"", None, False),
    ("", b'{"name": "ana"}', "application/json; charset=utf-8", True),
    ("", b'{"name": "ana"}', "Application/JSON ; charset=latin-1", True),
    ("", '{"name": "ana"}'.encode("utf-16"), "application/json; charset=utf-16", True),
    ("", b'{"name": "ana"}', "application/merge-patch+json", False),
    ("", b'{"name": "ana"}', "text/plain", False),
    ("", b"[" * 5000 + b"]" * 5000, "application/json", False),
]


def _without_hot_path(client: TestClient) -> TestClient:
    app = make_client(client.app.state.hub.engine, auth=client.app.state.hub.auth).app
    app.router.routes[:] = [r for r in app.router.routes if not isinstance(r, EnrichRoute)]
    return TestClient(app, raise_server_exceptions=False)


def _answer(response: Any) -> tuple[int, Any, str | None]:
    """What a client sees, without the execution's id (a new one each call)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    text = re.sub(r"[0-9a-f]{32}", "<id>", str(body))
    return response.status_code, text, response.headers.get("content-type")


def _both(client: TestClient, path: str, body: bytes, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
          ) -> tuple[tuple[int, Any, str | None], tuple[int, Any, str | None], list[bool]]:
    read: list[bool] = []
    plain = enrich_route._read

    def spy(scope: Any, raw: bytes) -> Any:
        found = plain(scope, raw)
        read.append(found is not None)
        return found

    monkeypatch.setattr(enrich_route, "_read", spy)
    with _without_hot_path(client) as full:
        before = _answer(full.post(path, content=body, headers=headers))
    assert read == []
    after = _answer(client.post(path, content=body, headers=headers))
    return before, after, read


@pytest.mark.parametrize(("query", "body", "kind", "hot"), CALLS)
def test_same_answer_as_the_fastapi_route(client: TestClient, monkeypatch: pytest.MonkeyPatch, query: str,
                                          body: bytes, kind: str | None, hot: bool) -> None:
    deploy(client)
    headers = {"content-type": kind} if kind else {}
    before, after, read = _both(client, f"/v1/enrich/demo/hello{query}", body, headers, monkeypatch)
    assert after == before
    assert read == [hot]


def test_same_auth_answers(engine: Engine, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    with make_client(engine, auth="auto") as secured:
        deploy(secured, headers=bearer(keys["admin"]))
        for headers in ({}, bearer("hub_unknown"), bearer(keys["read"]), {"X-API-Key": keys["run"]},
                        bearer(keys["run"]), {"Authorization": "Basic x", "X-API-Key": keys["run"]}):
            before, after, read = _both(secured, "/v1/enrich/demo/hello", b'{"name": "ana"}', {**JSON, **headers},
                                        monkeypatch)
            assert after == before and read == [True]


def test_other_methods_and_paths_are_the_routers(client: TestClient) -> None:
    deploy(client)
    assert client.get("/v1/enrich/demo/hello").status_code == 405
    assert client.post("/v1/enrich/demo/hello/batch", json={"items": [{"name": "a"}]}).status_code == 200
    assert "/v1/enrich/{namespace}/{flow_id}" in client.get("/openapi.json").json()["paths"]
