"""flows/ml_batch_scoring.yaml as shipped: customers from a stand-in CRM API, scored in a container
(the stand-in Docker engine, the real docker SDK), those at risk posted back."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.flow.loader import load_file
from hub.testing import run_flow, serve_app
from tests.fakes.docker_engine import FakeDockerEngine, serve_unix

FLOW = Path(__file__).resolve().parents[2] / "flows" / "ml_batch_scoring.yaml"
CUSTOMERS = [{"id": i, "email": f"c{i}@shop.io", "visits": i % 7, "spend": 40.0 * (i % 5)} for i in range(1, 41)]


class CrmApi:
    def __init__(self) -> None:
        self.posted: list[Any] = []

        async def customers(request: Request) -> JSONResponse:
            return JSONResponse(CUSTOMERS)

        async def scores(request: Request) -> JSONResponse:
            self.posted.append(await request.json())
            return JSONResponse({"ok": True}, status_code=201)

        self.app = Starlette(routes=[Route("/customers", customers), Route("/churn-scores", scores, methods=["POST"])])


@pytest.fixture
def crm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[CrmApi, str, FakeDockerEngine]]:
    api, docker = CrmApi(), FakeDockerEngine(registry={"python:3.12-slim"})
    with serve_app(api.app) as url, serve_unix(docker.app, tmp_path / "docker.sock") as sock:
        monkeypatch.setenv("HUB_DOCKER_HOST", sock)
        monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
        yield api, url, docker


def _churn(c: dict[str, Any]) -> float:
    return round(1 / (1 + math.exp(-(1.5 - 0.35 * c["visits"] - 0.004 * c["spend"]))), 3)


def test_scores_in_a_container_and_posts_those_at_risk(crm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api, url, docker = crm
    result = run_flow(load_file(FLOW), {"api": url, "threshold": 0.6}, home=tmp_path / "home")
    assert result.state == "SUCCESS", result.error
    expected = [{"id": c["id"], "email": c["email"], "churn": _churn(c)} for c in CUSTOMERS if _churn(c) >= 0.6]
    assert 0 < len(expected) < len(CUSTOMERS)
    assert result.outputs["scored"] == len(CUSTOMERS) and result.outputs["at_risk"] == len(expected)
    [posted] = api.posted
    assert posted["at_risk"] == expected and posted["scores"].startswith("blob:")
    scores = result.engine.store.get_blob(result.outputs["scores"]["blob"][5:]).decode()
    assert len(list(csv.DictReader(scores.splitlines()))) == len(CUSTOMERS)
    [body] = docker.created
    assert body["HostConfig"]["NetworkMode"] == "none" and body["HostConfig"]["NanoCpus"] == 2_000_000_000
    assert docker.pulls == ["python:3.12-slim"] and docker.containers == {}
