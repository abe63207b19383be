"""Fixtures for the LLM layer: a scripted OpenAI-compatible server on loopback, model aliases
pointing at it, a prompts folder, and a task context on a real store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.llm.client import LLMClient  # noqa: E402
from hub.llm.fake import FakeOpenAI  # noqa: E402
from hub.llm.settings import LLMSettings, ModelsConfig  # noqa: E402
from hub.settings import HubSettings  # noqa: E402
from hub.store.store import Store  # noqa: E402
from hub.tasks.base import TaskContext  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

TRIAGE_PROMPT = """\
name: triage
description: Classify a ticket.
model: fast
parameters: {temperature: 0}
variables:
  body: {description: the ticket}
  tier: {default: free}
messages:
  - role: system
    content: You triage tickets.
  - role: user
    content: "Tier {{ tier }}. Ticket: {{ body }}"
output:
  schema:
    type: object
    required: [category, urgency]
    properties:
      category: {type: string, enum: [billing, bug, other]}
      urgency: {type: string, enum: [low, high]}
tags: [test]
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def _fake_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    with server.serve() as api_base:
        server.api_base = api_base  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def fake(_fake_server: FakeOpenAI) -> FakeOpenAI:
    """The scripted OpenAI-compatible server, emptied for this test."""
    _fake_server.reset()
    return _fake_server


def models_for(api_base: str, transport: str = "auto", **overrides: Any) -> ModelsConfig:
    models: dict[str, Any] = {
        # a real price-map model served by the fake: cost comes from litellm's price map
        "fast": {"model": "openai/gpt-4o-mini", "api_base": api_base, "api_key": "sk-test"},
        "primary": {"model": "openai/primary-m", "api_base": api_base, "api_key": "sk-test", "fallbacks": ["backup"]},
        "backup": {
            "model": "openai/backup-m", "api_base": api_base, "api_key": "sk-test",
            "input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002,
        },
        "local": {
            "model": "openai/llama-local", "api_base": api_base, "api_key": "none",
            "input_cost_per_token": 0.001, "output_cost_per_token": 0.002,
        },
        "small": {
            "model": "openai/small-m", "api_base": api_base, "api_key": "sk-test",
            "context_window_fallbacks": ["backup"],
        },
    }
    models.update(overrides)
    if transport != "auto":
        models = {name: {**spec, "transport": transport} for name, spec in models.items()}
    return ModelsConfig.model_validate({"default": "fast", "models": models})


@pytest.fixture(params=["openai", "litellm"])
def transport(request: pytest.FixtureRequest) -> str:
    """Each LLM test runs over both transports: the OpenAI wire format spoken directly, and litellm."""
    return str(request.param)


@pytest.fixture
def client(fake: FakeOpenAI, tmp_path: Path, transport: str) -> LLMClient:
    # one retry: a retry without Retry-After backs off 0.25-0.5 s
    settings = LLMSettings(models_file=tmp_path / "none.yaml", timeout=5, num_retries=1)
    return LLMClient(settings, models_for(fake.api_base, transport))  # type: ignore[attr-defined]


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "triage.yaml").write_text(TRIAGE_PROMPT)
    for name in ("support_triage", "lead_qualifier"):
        shutil.copy(REPO / "prompts" / f"{name}.yaml", folder / f"{name}.yaml")
    return folder


class Contexts:
    """Task contexts on a real store, each for a real execution row of a real flow revision."""

    def __init__(self, store: Store, prompts: Path, client: LLMClient, home: Path):
        self.store = store
        self.prompts = prompts
        self.client = client
        self.settings = HubSettings(home=home, prompts_dir=prompts)

    def execution(self, flow_source: str = "id: demo\ntasks: [{id: a, type: log, message: hi}]\n") -> str:
        import hashlib

        revision, _ = self.store.save_flow("default", "demo", flow_source, hashlib.sha256(flow_source.encode()).hexdigest())
        return self.store.create_execution(
            namespace="default", flow_id="demo", revision=revision, inputs={}, state="RUNNING"
        )

    def make(self, execution_id: str | None = None, path: str = "ask", attempt: int = 1, **services: Any) -> TaskContext:
        return TaskContext(
            execution_id=execution_id or self.execution(),
            namespace="default",
            flow_id="demo",
            task_id=path.split("[")[0],
            path=path,
            attempt=attempt,
            settings=self.settings,
            store=self.store,
            services={"llm": self.client, **services},
        )


@pytest.fixture
def contexts(sqlite_store: Store, prompts: Path, client: LLMClient, tmp_path: Path) -> Contexts:
    return Contexts(sqlite_store, prompts, client, tmp_path / "home")
