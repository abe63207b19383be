"""The docs stay true: every task kind is documented, the README's commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from hub.cli import main
from hub.tasks.registry import default_registry

ROOT = Path(__file__).resolve().parents[1]


def test_every_task_kind_is_documented() -> None:
    docs = "\n".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
    missing = [name for name in default_registry().types() if f"`{name}`" not in docs and f"`{name.split('.')[0]}.*`" not in docs]
    assert not missing, f"task kinds missing from docs/: {missing}"


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    for script in re.findall(r"^(scripts/\S+\.sh)", readme, re.M):
        assert (ROOT / script).exists(), script
    commands = set(re.findall(r"^hub (\w+)", readme, re.M)) | set(re.findall(r"`hub ([a-z]\w*)", readme))
    runner = CliRunner()
    for command in sorted(commands):
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0, f"hub {command}: {result.output}"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci/run").read_text()
    assert "scripts/test.sh" in ci and "scripts/test.sh" in (ROOT / "README.md").read_text()
