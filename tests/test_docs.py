"""The docs stay true: every task kind is documented, the README's commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from hub.cli import main
from hub.core.plugins import default_plugins

ROOT = Path(__file__).resolve().parents[1]


def _ours(kind: str) -> list[str]:
    """Names of ``kind`` contributed by the hub's own plugins (built-in or in the hub package),
    not by third-party plugins installed next to it (the tests' sample plugin)."""
    return sorted(
        c.name for info in default_plugins().infos()
        if info.source.startswith("built-in") or "(hub " in info.source
        for c in info.contributions if c.kind == kind
    )


def test_every_task_kind_is_documented() -> None:
    docs = "\n".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
    kinds = _ours("task_kind")
    assert "set" in kinds and "crm.upsert" in kinds
    missing = [name for name in kinds if f"`{name}`" not in docs and f"`{name.split('.')[0]}.*`" not in docs]
    assert not missing, f"task kinds missing from docs/: {missing}"


def test_every_trigger_type_is_documented() -> None:
    docs = (ROOT / "docs" / "triggers.md").read_text() + (ROOT / "docs" / "flow-language.md").read_text()
    missing = [name for name in _ours("trigger_type") if f"`{name}`" not in docs and f"type: {name}" not in docs]
    assert not missing, f"trigger types missing from docs/triggers.md: {missing}"


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
