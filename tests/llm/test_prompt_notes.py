"""An edited prompt is ``latest``, not ``production``: ``hub run`` and ``hub serve`` say so once.

Real ``hub`` subprocesses; the model is the project's fake OpenAI-compatible server on loopback.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from hub.llm.fake import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
PROMPT = """\
name: greeter
model: fast
variables:
  who: {description: whom to greet}
messages:
  - role: user
    content: "Say hello to {{ who }}"
"""
FLOW = """\
id: greet
namespace: notes
tasks:
  - id: hello
    type: llm.chat
    prompt: greeter@production
    vars: {who: Ada}
outputs:
  text: "{{ outputs.hello.text }}"
"""


def environment(project: Path, api_base: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") or k.startswith("HUB_TEST_")}
    models = {"fast": {"model": "openai/greeter-m", "api_base": api_base, "api_key": "sk-test",
                       "input_cost_per_token": 0, "output_cost_per_token": 0}}  # priced here: litellm stays unloaded
    env.update({"HUB_HOME": str(project / ".hub"), "PYTHONPATH": str(ROOT), "HUB_LLM_MODELS": json.dumps(models),
                "HUB_LLM_MODELS_FILE": str(project / "none.yaml"), "HUB_HTTP_ALLOW_HOSTS": "127.0.0.1"})
    return env


def notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("note: ")]


def test_hub_run_says_which_version_production_runs_after_an_edit(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "greeter.yaml").write_text(PROMPT)
    (tmp_path / "greet.yaml").write_text(FLOW)
    fake = FakeOpenAI()
    with fake.serve() as api_base:
        env = environment(tmp_path, api_base)

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "hub.cli", "run", "greet.yaml", "--flows", "none"], env=env,
                                  cwd=tmp_path, capture_output=True, text=True, timeout=120)

        first = run()
        assert first.returncode == 0, first.stderr
        assert notes(first.stderr) == []  # version 1 is production: nothing to say
        (tmp_path / "prompts" / "greeter.yaml").write_text(PROMPT.replace("Say hello", "Say hi"))
        second = run()
        assert second.returncode == 0, second.stderr
        assert notes(second.stderr) == [
            "note: prompt greeter: production is version 1; the newer version 2 (latest, e.g. an edited file) has "
            "no label, so greeter@production runs version 1. To run the newer one: "
            "hub prompts promote greeter 2 --label production --require-eval evals/<file>.yaml (a protected label)"
        ]
        asked = [call["messages"][0]["content"] for call in fake.calls()]
        assert asked == ["Say hello to Ada", "Say hello to Ada"]  # the note told the truth
        promoted = subprocess.run([sys.executable, "-m", "hub.cli", "prompts", "promote", "greeter", "2",
                                   "--force", "--reason", "reviewed the edit"], env=env,
                                  cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert promoted.returncode == 0, promoted.stderr
        third = run()
        assert notes(third.stderr) == [] and fake.calls()[-1]["messages"][0]["content"] == "Say hi to Ada"


def test_hub_serve_says_it_once_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "greeter.yaml").write_text(PROMPT)
    env = environment(tmp_path, "http://127.0.0.1:9/v1")
    synced = subprocess.run([sys.executable, "-m", "hub.cli", "prompts", "sync"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert synced.returncode == 0, synced.stderr
    (tmp_path / "prompts" / "greeter.yaml").write_text(PROMPT.replace("Say hello", "Say hi"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve", "--port", str(port), "--flows", "none"],
                              env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert server.stderr is not None
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            lines.append(line)
            if "Uvicorn running" in line or "Application startup complete" in line or not line:
                break
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert notes("".join(lines)) == [
        "note: prompt greeter: production is version 1; the newer version 2 (latest, e.g. an edited file) has "
        "no label, so greeter@production runs version 1. To run the newer one: "
        "hub prompts promote greeter 2 --label production --require-eval evals/<file>.yaml (a protected label)"
    ], "".join(lines)
