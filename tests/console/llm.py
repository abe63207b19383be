"""An LLM-backed project for the console tests: the shipped fake OpenAI-compatible server on
loopback answering the triage prompt from the ticket text, a prompts folder with two versions of
that prompt, an eval file, and a flow with an ``llm.chat`` step."""

from __future__ import annotations

from pathlib import Path

from hub.evals.runner import EvalRunner
from hub.evals.spec import load_file
from hub.llm.client import LLMClient
from hub.llm.fake import FakeOpenAI
from hub.llm.settings import LLMSettings
from hub.prompts.registry import PromptRegistry
from hub.store.store import Store
from tests.evals.helpers import TRIAGE_EVAL, new_version, triage_answer
from tests.llm.conftest import TRIAGE_PROMPT, models_for

TRIAGE_FLOW = """\
id: triage
namespace: support
inputs:
  - {id: body, type: string, required: true}
tasks:
  - id: classify
    type: llm.chat
    prompt: triage@production
    vars: {body: "{{ inputs.body }}"}
outputs: {category: "{{ outputs.classify.value.category }}"}
"""


def llm_client(fake: FakeOpenAI, api_base: str, home: Path) -> LLMClient:
    fake.responder = triage_answer
    settings = LLMSettings(models_file=home / "none.yaml", timeout=5, num_retries=0)
    judge = {"model": "openai/judge-m", "api_base": api_base, "api_key": "sk-test",
             "input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}
    return LLMClient(settings, models_for(api_base, judge=judge))


def project(root: Path) -> tuple[Path, Path]:
    """``prompts/`` with the triage prompt (version 1 stored, labelled production) and ``evals/``."""
    prompts, evals = root / "prompts", root / "evals"
    prompts.mkdir(parents=True)
    evals.mkdir()
    (prompts / "triage.yaml").write_text(TRIAGE_PROMPT)
    (evals / "triage.yaml").write_text(TRIAGE_EVAL)
    return prompts, evals


async def two_version_run(store: Store, client: LLMClient, prompts: Path, evals: Path, settings: object) -> str:
    """Store v1 (production) and v2 of the prompt, run the eval over both; returns the run id."""
    registry = PromptRegistry(store.engine, prompts)
    registry.sync("triage")
    new_version(prompts)
    registry.sync("triage")
    runner = EvalRunner(store, client, settings)  # type: ignore[arg-type]
    outcome = await runner.run(load_file(evals / "triage.yaml"))
    return outcome.run_id


ONLINE_EVAL = """\
name: triage_online
target: {prompt: triage}
online: {label: production, sample_rate: 0.2, window: 10, min_samples: 5, alert_below: 0.7}
assert:
  - {type: field, path: category, one_of: [billing, bug]}
"""


async def quality_seed(store: Store, client: LLMClient, evals: Path, settings: object) -> str:
    """After :func:`two_version_run`: a candidate-vs-production run (v2 against v1) and an online
    eval attached to the production label with 30 scores, the newest 10 falling (it alerts)."""
    import time

    from sqlalchemy import update

    from hub.evals.online_store import SCORES, OnlineStore
    from hub.evals.spec import load_text

    runner = EvalRunner(store, client, settings)  # type: ignore[arg-type]
    compared = await runner.run(load_file(evals / "triage.yaml"), compare=("2", "production"))
    online = OnlineStore(store.engine)
    online.attach(load_text(ONLINE_EVAL, "evals/triage_online.yaml"))
    now = time.time()
    ids = []
    for i in range(30):
        passed = i < 20 or i % 3 == 0
        ids.append(online.add_score(eval_name="triage_online", prompt_name="triage", prompt_version=1, model="fast",
                                    passed=passed, score=1.0 if passed else 0.0, assertions=[], cost=0.0))
    with store.engine.begin() as conn:  # spread over the last half hour, a minute apart
        for i, score_id in enumerate(ids):
            conn.execute(update(SCORES).where(SCORES.c.id == score_id).values(created_at=now - (30 - i) * 60))
    online.set_alerting("triage_online", True)
    return compared.run_id
