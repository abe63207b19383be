"""``hub eval`` imports what a run needs when it needs it: start-up is most of the command's time.

Each test runs a real ``hub`` process (the console script's ``main``) that reports, as it exits,
which of the heavy libraries it imported: the database layer only once a run opens the store, the
HTTP client only for a request a model really gets (not for an eval answered from its cache, not
for an eval refused before any call), never litellm for aliases with a price on the OpenAI wire,
never the web framework, never the engine's own tables for a prompt's eval.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.evals.test_exit_codes import project_env  # noqa: F401  (the fixture)

HEAVY = (
    "sqlalchemy", "sqlmodel", "pydantic", "aiohttp", "jsonschema", "litellm", "fastapi", "httpx",
    "hub.store.store", "hub.store.tables", "hub.engine.runner",
)

# `hub ...` as the console script runs it, printing the heavy modules it holds as it exits
PROBE = (
    "import atexit, json, sys\n"
    f"heavy = {HEAVY!r}\n"
    "atexit.register(lambda: print('IMPORTED ' + json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr))\n"
    "from hub.cli import main\n"
    "sys.argv[0] = 'hub'\n"
    "main()\n"
)


def probe(env: dict[str, str], cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
    )
    line = next((ln for ln in done.stderr.splitlines() if ln.startswith("IMPORTED ")), None)
    assert line is not None, done.stdout + done.stderr
    return done, set(json.loads(line.removeprefix("IMPORTED ")))


def test_finding_the_eval_command_imports_no_heavy_library(project_env, project):  # noqa: F811
    done, imported = probe(project_env, project, "eval", "run", "--help")
    assert done.returncode == 0 and "--no-cache" in done.stdout, done.stderr
    assert imported <= {"pydantic"}, imported  # (the settings are read, to warn about misspelt ones)


def test_a_run_imports_the_http_client_for_its_requests_only(project_env, project, fake):  # noqa: F811
    args = ("eval", "evals/triage.yaml", "-m", "local")  # priced on the OpenAI wire: no litellm
    first, imported = probe(project_env, project, *args)
    assert first.returncode in (0, 1), first.stdout + first.stderr
    asked = len(fake.requests)
    assert asked == 10
    assert {"sqlalchemy", "aiohttp", "jsonschema"} <= imported
    assert not imported & {"litellm", "fastapi", "httpx", "hub.store.store", "hub.store.tables", "hub.engine.runner"}
    again, imported = probe(project_env, project, *args)
    assert again.returncode == first.returncode and "(cached)" in again.stdout, again.stdout + again.stderr
    assert len(fake.requests) == asked  # every answer from the eval cache ...
    assert "aiohttp" not in imported and "jsonschema" in imported  # ... each checked, none asked


def test_an_invalid_eval_exits_2_before_importing_any_transport(project_env, project, fake):  # noqa: F811
    done, imported = probe(project_env, project, "eval", "evals/triage.yaml", "-m", "fsat")
    assert done.returncode == 2 and "unknown model alias 'fsat'" in done.stderr, done.stderr
    assert not imported & {"aiohttp", "litellm", "httpx"}
    assert fake.requests == []

