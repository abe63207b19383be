"""hub.core.host: what the hub lends plugins, found by interface, with a clear error when absent."""

from __future__ import annotations

import pytest

from hub.core.errors import HubError
from hub.core.host import EXPRESSIONS, FUNCTIONS, Interface, lookup, provide


def test_the_flow_language_provides_expressions_on_first_lookup() -> None:
    language = lookup(EXPRESSIONS)
    rule = language.compile_condition("row.total > 10")
    assert language.truthy(rule({"row": language.scope("row", {"total": 12}, noun="column")}))
    from hub.flow.expressions import FILTERS

    assert dict(language.filters) == FILTERS  # the email templates render with the flows' own filters


def test_user_functions_follow_the_module_policy() -> None:
    class Settings:
        python_modules = "json"

    assert lookup(FUNCTIONS)("json:dumps", Settings())([1]) == "[1]"  # type: ignore[arg-type]
    with pytest.raises(HubError, match="os"):
        lookup(FUNCTIONS)("os:system", Settings())  # type: ignore[arg-type]


def test_an_interface_nobody_provides_is_a_clear_error() -> None:
    missing: Interface[object] = Interface("telepathy", "hub.core.errors")  # a module that provides nothing
    with pytest.raises(HubError, match="this process provides no telepathy"):
        lookup(missing)
    provide(missing, "yes")
    assert lookup(missing) == "yes"


def test_every_interface_is_provided_by_the_module_it_names(tmp_path) -> None:
    """An interface's home is a string (no import the contracts see): a fresh process finds each
    interface by importing that module alone, whatever was imported before."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import hub.core.host as host, hub.core.tracing as tracing\n"
        "found = [v for m in (host, tracing) for v in vars(m).values() if isinstance(v, host.Interface)]\n"
        "for interface in found:\n"
        "    host.lookup(interface)\n"
        "with host.lookup(tracing.TRACING).model_call(model='m') as call:\n"
        "    call.record_response(input_tokens=1, output_tokens=2)\n"
        "print(sorted(i.name for i in found))\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
           "HUB_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sorted(["commands", "eval gate", "expressions", "functions", "model usage",
                                              "scopes", "store", "tracing"]))
