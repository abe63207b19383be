"""Fixtures for evals: the LLM layer's scripted OpenAI-compatible server on loopback, model
aliases on it, a prompts folder and a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.evals.runner import EvalRunner
from hub.llm.client import LLMClient
from hub.llm.fake import FakeOpenAI
from hub.llm.settings import LLMSettings
from hub.settings import HubSettings
from hub.store.store import Store
from tests.llm.conftest import TRIAGE_PROMPT, models_for


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """The shipped fake (chat and embeddings); the eval tests answer through its responder."""
    server = FakeOpenAI()
    with server.serve() as api_base:
        server.api_base = api_base  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def client(fake: FakeOpenAI, tmp_path: Path) -> LLMClient:
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
