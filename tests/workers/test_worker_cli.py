"""``hub worker`` and ``hub serve`` refuse option values they cannot run with, as usage errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hub.cli import main


@pytest.mark.parametrize("args", [
    ["worker", "--concurrency", "0"],
    ["worker", "--concurrency", "-1"],
    ["worker", "--poll-delay", "0"],
    ["worker", "--sweep-interval", "-5"],
    ["worker", "--grace", "-1"],
    ["worker", "--log-level", "loud"],
    ["serve", "--port", "70000"],
    ["serve", "--log-level", "loud"],
])
def test_impossible_option_values_are_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for" in result.output and args[1] in result.output
