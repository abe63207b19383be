"""``hub eval`` exit codes for CI, each from a real ``hub`` process against the loopback
OpenAI-compatible server: 0 gates met, 1 a gate missed, 2 an invalid eval (nothing called),
3 a provider that stays down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from hub.llm.fake import FakeOpenAI, Reply
from hub.prompts.registry import PromptRegistry
from tests.evals.helpers import TRIAGE_EVAL, new_version
from tests.evals.test_compare_cache import GATED, hurried
from tests.llm.conftest import models_for

HUB = str(Path(sys.executable).parent / "hub")


@pytest.fixture
def project_env(project: Path, fake: FakeOpenAI, store) -> dict[str, str]:
    """v1 (production) always 'billing', v2 reads the ticket, v3 always 'bug'; the environment
    of a hub process pointed at the project and the fake server."""
    fake.responder = hurried
    registry = PromptRegistry(store.engine, project / "prompts")
    registry.sync()
    new_version(project / "prompts")
    registry.sync()
    new_version(project / "prompts", "carefully.", "in a hurry.")
    registry.sync()
    (project / "evals" / "triage.yaml").write_text(GATED)
    models = {n: s.model_dump(exclude_none=True) for n, s in models_for(fake.api_base).models.items()}  # type: ignore[attr-defined]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_HOME=str(project / ".hub"), HUB_PROMPTS_DIR=str(project / "prompts"), HUB_LLM_MODELS_FILE=str(project / "none.yaml"),
        HUB_LLM_MODELS=json.dumps(models), HUB_LLM_DEFAULT_MODEL="fast", HUB_LLM_NUM_RETRIES="0",
    )
    return env


def hub(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HUB, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_exit_0_when_the_candidate_meets_the_gates_and_the_rerun_is_cached(project_env, project, fake):
    args = ("eval", "evals/triage.yaml", "--candidate", "triage:2", "--against", "triage@production", "--junit", "junit.xml")
    done = hub(project_env, project, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Candidate v2 against v1 (production)" in done.stdout and "improvements: crash, error-500, hello" in done.stdout
    asked = len(fake.requests)
    assert asked == 10
    root = ET.parse(project / "junit.xml").getroot()
    assert root.tag == "testsuites" and len(root.findall("testsuite")) == 2
    again = hub(project_env, project, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(fake.requests) == asked  # zero model requests the second time
    assert "crash                    FAIL 0/1 (cached)      pass 1/1 (cached)" in again.stdout
    fresh = hub(project_env, project, *args, "--no-cache", "--cases", "crash")
    assert fresh.returncode == 0 and len(fake.requests) == asked + 2


def test_exit_1_when_the_candidate_regresses(project_env, project):
    done = hub(project_env, project, "eval", "evals/triage.yaml", "--candidate", "3", "--against", "production")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "regressions: charged-twice, invoice\n" in done.stdout and "gate missed: regressions is 2, needs ≤ 0" in done.stdout


def test_exit_2_for_an_invalid_eval_before_any_call(project_env, project, fake):
    alias = hub(project_env, project, "eval", "evals/triage.yaml", "-m", "fsat")
    assert alias.returncode == 2, alias.stdout + alias.stderr
    assert "unknown model alias 'fsat'; did you mean 'fast'?" in alias.stderr
    (project / "evals" / "bad.yaml").write_text(TRIAGE_EVAL.replace("expected:", "expectd:", 1))
    broken = hub(project_env, project, "eval", "evals/bad.yaml")
    assert broken.returncode == 2 and "unknown key 'expectd'" in broken.stderr
    other = hub(project_env, project, "eval", "evals/triage.yaml", "--candidate", "lead:2", "--against", "production")
    assert other.returncode == 2 and "not 'lead'" in other.stderr
    assert fake.requests == []


def test_exit_3_when_the_provider_stays_down(project_env, project, fake):
    fake.responder = None
    fake.default = Reply(status=503)
    done = hub(project_env, project, "eval", "evals/triage.yaml", "-V", "2")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "INCOMPLETE: 5 case run(s) got no answer" in done.stdout
