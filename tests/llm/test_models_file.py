"""The models file the hub ships, and what a user meets when an alias or its key is missing.

Real ``hub run`` subprocesses on a shipped flow; ``-X importtime`` shows whether litellm (a
multi-second import) was loaded before the error was given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from hub.llm.settings import ModelsConfig

ROOT = Path(__file__).resolve().parents[2]
TICKET = ["-i", "ticket_id=T-1", "-i", "subject=Refund", "-i", "body=I was charged twice",
          "-i", "customer_email=ana@example.com"]


def hub_run(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("HUB_", "OPENAI_", "ANTHROPIC_")) or k.startswith("HUB_TEST_")}
    environ.update({"HUB_HOME": str(project / ".hub"), "HUB_PROMPTS_DIR": str(ROOT / "prompts"),
                    "PYTHONPATH": str(ROOT), **env})
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hub.cli", "run", str(ROOT / "flows/support_triage.yaml"),
         *TICKET, "--flows", "none"],
        env=environ, cwd=project, capture_output=True, text=True, timeout=120,
    )


def litellm_imported(stderr: str) -> bool:
    return any(line.rstrip().endswith("| litellm") for line in stderr.splitlines() if line.startswith("import time:"))


def messages(stderr: str) -> str:
    return "\n".join(line for line in stderr.splitlines() if not line.startswith("import time:"))


def test_the_shipped_models_file_defines_every_alias_the_shipped_prompts_use() -> None:
    config = ModelsConfig.model_validate(yaml.safe_load((ROOT / "models.yaml").read_text()))
    used = {yaml.safe_load(path.read_text()).get("model") for path in (ROOT / "prompts").glob("*.yaml")}
    assert used - {None} <= set(config.models) and "fast" in used
    assert config.default in config.models
    providers = {spec.model.split("/")[0] for spec in config.models.values()}
    assert {"openai", "anthropic"} <= providers
    local = [spec for spec in config.models.values() if spec.api_base and spec.api_base.startswith("http://localhost")]
    assert local and all(spec.model.startswith("openai/") for spec in local)  # called over the OpenAI wire format
    assert all(spec.api_key is None or spec.api_key == "none" for spec in config.models.values())  # no key in the file


def test_a_missing_alias_names_itself_the_file_and_the_fix_without_importing_litellm(tmp_path: Path) -> None:
    done = hub_run(tmp_path)  # no models.yaml in the folder the user runs in
    assert done.returncode == 1, messages(done.stderr)
    text = messages(done.stderr)
    assert (f"model 'fast' is not an alias: aliases are read from models.yaml (no such file: "
            f"{tmp_path / 'models.yaml'}) and HUB_LLM_MODELS") in text
    assert "Define 'fast' under 'models:' in that file" in text and "provider/model (openai/gpt-4o-mini)" in text
    assert "LLM Provider NOT provided" not in text
    assert not litellm_imported(done.stderr)


def test_the_shipped_file_without_a_key_says_which_variable_to_set(tmp_path: Path) -> None:
    shutil.copy(ROOT / "models.yaml", tmp_path / "models.yaml")
    done = hub_run(tmp_path)
    assert done.returncode == 1, messages(done.stderr)
    text = messages(done.stderr)
    assert ("model 'fast': openai/gpt-4o-mini reads its API key from OPENAI_API_KEY, which is not set: "
            "export OPENAI_API_KEY=...") in text
    # (litellm may be loading meanwhile: a process preloads it in a thread when an alias will need it)
