"""Fixtures for evals: the LLM layer's scripted OpenAI-compatible server on loopback (with an
``/embeddings`` route added), model aliases on it, a prompts folder and a store."""

from __future__ import annotations

import contextvars
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.evals.runner import EvalRunner
from hub.llm.client import LLMClient
from hub.llm.fake import FakeOpenAI, Reply, _send_json
from hub.llm.settings import LLMSettings
from hub.settings import HubSettings
from hub.store.store import Store
from tests.llm.conftest import TRIAGE_PROMPT, models_for

DIMENSIONS = 64


def bag_of_words(text: str) -> list[float]:
    """A deterministic embedding: hashed word counts, so texts sharing words are similar."""
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


_REQUEST: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("fake_request", default=None)
Responder = Callable[[dict[str, Any]], "Reply | str | None"]


class FakeWithEmbeddings(FakeOpenAI):
    """The LLM layer's fake, plus ``POST /v1/embeddings`` in the OpenAI wire format, and an
    optional ``responder`` that answers from the request's content (order-free, so cases can
    run concurrently); scripted replies are used when it returns None."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding_requests: list[dict[str, Any]] = []
        self.responder: Responder | None = None

    def _next(self, model: str | None) -> Reply:
        request = _REQUEST.get()
        if self.responder is not None and request is not None:
            answer = self.responder(request)
            if answer is not None:
                return Reply(answer) if isinstance(answer, str) else answer
        return super()._next(model)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        if scope["path"].rstrip("/").endswith("/embeddings"):
            request = json.loads(body or b"{}")
            self.embedding_requests.append(request)
            texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
            tokens = sum(len(str(t).split()) for t in texts)
            await _send_json(send, 200, {
                "object": "list",
                "model": request.get("model"),
                "data": [{"object": "embedding", "index": i, "embedding": bag_of_words(str(t))} for i, t in enumerate(texts)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            })
            return
        _REQUEST.set(json.loads(body) if body else None)
        await super().__call__(scope, replay, send)


@pytest.fixture
def fake() -> Iterator[FakeWithEmbeddings]:
    server = FakeWithEmbeddings()
    with server.serve() as api_base:
        server.api_base = api_base  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def client(fake: FakeWithEmbeddings, tmp_path: Path) -> LLMClient:
    base = fake.api_base  # type: ignore[attr-defined]
    settings = LLMSettings(models_file=tmp_path / "none.yaml", timeout=5, num_retries=0)
    extra = {
        "judge": {"model": "openai/judge-m", "api_base": base, "api_key": "sk-test",
                  "input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002},
        "cheap": {"model": "openai/cheap-m", "api_base": base, "api_key": "sk-test",
                  "input_cost_per_token": 0.0000001, "output_cost_per_token": 0.0000002},
        "embed": {"model": "openai/text-embedding-3-small", "api_base": base, "api_key": "sk-test",
                  "input_cost_per_token": 0.00000002, "output_cost_per_token": 0},
    }
    return LLMClient(settings, models_for(base, **extra))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder: prompts/ with the test prompt, evals/ empty."""
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "triage.yaml").write_text(TRIAGE_PROMPT)
    (tmp_path / "evals").mkdir()
    return tmp_path


@pytest.fixture
def settings(project: Path) -> HubSettings:
    return HubSettings(home=project / ".hub", prompts_dir=project / "prompts")


@pytest.fixture
def store(settings: HubSettings) -> Iterator[Store]:
    settings.home.mkdir(parents=True, exist_ok=True)
    s = Store.open(settings.resolved_database_url())
    yield s
    s.close()


@pytest.fixture
def runner(store: Store, client: LLMClient, settings: HubSettings) -> EvalRunner:
    return EvalRunner(store, client, settings)
