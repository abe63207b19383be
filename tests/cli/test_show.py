"""``hub executions show`` and ``hub run``'s progress on an LLM flow, as a user sees them.

Real ``hub`` subprocesses; the model is the project's fake OpenAI-compatible server on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hub.cli_output import Progress
from hub.llm.fake import FakeOpenAI, Reply

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
namespace: show
tasks:
  - id: hello
    type: llm.chat
    prompt: greeter@production
    vars: {who: Ada}
  - id: shout
    type: set
    values: {text: "{{ outputs.hello.text | upper }}"}
outputs:
  text: "{{ outputs.shout.text }}"
"""


def project(tmp_path: Path, api_base: str) -> dict[str, str]:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "greeter.yaml").write_text(PROMPT)
    (tmp_path / "greet.yaml").write_text(FLOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") or k.startswith("HUB_TEST_")}
    models = {"fast": {"model": "openai/greeter-m", "api_base": api_base, "api_key": "sk-test",
                       "input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}}
    env.update({"HUB_HOME": str(tmp_path / ".hub"), "PYTHONPATH": str(ROOT), "HUB_LLM_MODELS": json.dumps(models),
                "HUB_LLM_MODELS_FILE": str(tmp_path / "none.yaml"), "HUB_HTTP_ALLOW_HOSTS": "127.0.0.1"})
    return env


def hub(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_show_has_step_outputs_prompt_version_model_tokens_and_cost(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with fake.serve() as api_base:
        env = project(tmp_path, api_base)
        fake.enqueue(Reply("Hello, Ada!", prompt_tokens=12, completion_tokens=4))
        ran = hub(env, tmp_path, "run", "greet.yaml", "--flows", "none")
        assert ran.returncode == 0, ran.stderr
    execution_id = json.loads(hub(env, tmp_path, "executions", "list", "--json").stdout)[0]["id"]
    shown = hub(env, tmp_path, "executions", "show", execution_id)
    assert shown.returncode == 0, shown.stderr
    lines = [line.strip() for line in click_free(shown.stdout).splitlines()]
    at = next(i for i, line in enumerate(lines) if line.startswith("SUCCESS") and " hello " in f" {line} ")
    assert lines[at + 1] == ("llm     prompt greeter v1 · model fast (openai/greeter-m) · 12 + 4 tokens · "
                             "$0.000020 · 1 call")
    assert lines[at + 2].startswith('output  {"value": "Hello, Ada!", "text": "Hello, Ada!", "prompt": {"name": "greeter"')
    assert 'output  {"text": "HELLO, ADA!"}' in lines
    assert "llm        prompt greeter v1 · model fast (openai/greeter-m) · 12 + 4 tokens · $0.000020 · 1 call" in \
        click_free(shown.stdout).splitlines()


def test_a_step_waiting_on_the_model_shows_as_running_at_once(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with fake.serve() as api_base:
        env = project(tmp_path, api_base)
        fake.enqueue(Reply("Hello, Ada!", delay=20))
        running = subprocess.Popen([sys.executable, "-m", "hub.cli", "run", "greet.yaml", "--flows", "none"], env=env,
                                   cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        try:
            assert running.stderr is not None
            seen = []
            for line in running.stderr:
                seen.append(line)
                if "RUNNING" in line and "hello [llm.chat]" in line:
                    break
            # the line came while the step was still on its way to the model (it answers in 20 s)
            assert running.poll() is None, "".join(seen)
            assert not any("SUCCESS" in line for line in seen)
        finally:
            running.kill()
            running.wait(timeout=30)


def test_on_a_terminal_the_running_line_is_replaced_by_the_outcome() -> None:
    printed: list[str] = []
    progress = Progress(tty=True, echo=printed.append)
    step = {"event": "step", "path": "hello", "type": "llm.chat", "attempt": 1, "error": None}
    progress({**step, "state": "RUNNING", "duration": None})
    progress({**step, "state": "SUCCESS", "duration": 1.5})
    progress({**step, "path": "again", "state": "RUNNING", "duration": None})
    progress({"event": "log", "level": "info", "message": "a line in between"})
    progress({**step, "path": "again", "state": "SUCCESS", "duration": 0.2})
    plain = [click_free(line) for line in printed]
    assert plain[0].split() == ["RUNNING", "hello", "[llm.chat]"]
    assert plain[1].startswith("\x1b[1A\r\x1b[K") and plain[1].split()[-3:] == ["hello", "[llm.chat]", "1500ms"]
    assert not plain[4].startswith("\x1b[1A")  # a log line came between: both lines stay
    piped: list[str] = []
    progress = Progress(tty=False, echo=piped.append)
    progress({**step, "state": "RUNNING", "duration": None})
    progress({**step, "state": "SUCCESS", "duration": 1.5})
    assert [click_free(line).split()[0] for line in piped] == ["RUNNING", "SUCCESS"]


def click_free(text: str) -> str:
    """``text`` without click's colour codes (the cursor movements stay)."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
