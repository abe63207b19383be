"""Modules loaded only when used: a hook on a module's import runs once, after its code, and
leaves the module as its own loader made it; a deferred module runs its code at first use."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

CHECKS = """
import importlib.util, sys
from hub.core.imports import when_imported

seen = []
when_imported("hooked_mod", lambda m: seen.append(m.VALUE))
when_imported("hooked_mod", lambda m: 1 / 0)  # a failing hook is logged; the import goes on
when_imported("hooked_mod", lambda m: seen.append("second"))
assert importlib.util.find_spec("hooked_mod") is not None and seen == []  # asked about, not imported
import hooked_mod
assert seen == [42, "second"], seen
assert type(hooked_mod.__loader__).__name__ == "SourceFileLoader" and hooked_mod.__spec__.loader is hooked_mod.__loader__
import importlib; importlib.reload(hooked_mod)
assert seen == [42, "second"]  # once
when_imported("hooked_mod", lambda m: seen.append("late"))  # already imported: at once
assert seen[-1] == "late"
when_imported("no_such_module_here", lambda m: seen.append("never"))
try:
    import no_such_module_here
except ImportError:
    pass
assert "never" not in seen

from hub.core.imports import defer_import
defer_import("deferred_mod")
import deferred_mod
assert "ran" not in sys.modules["deferred_mod"].__dict__ and not hasattr(sys, "deferred_ran")
assert deferred_mod.ran is True and sys.deferred_ran  # its code ran at the first name asked for

defer_import("deferred_hooked")
when_imported("deferred_hooked", lambda m: seen.append(("deferred", m.VALUE)))
import deferred_hooked
assert ("deferred", 7) not in seen
assert deferred_hooked.VALUE == 7 and seen[-1] == ("deferred", 7)  # its hook ran with its code

defer_import("deferred_broken")
import deferred_broken
try:
    deferred_broken.anything
except ZeroDivisionError:  # the module's own error
    pass
else:
    raise AssertionError("a deferred module whose code fails must raise")
assert "deferred_broken" not in sys.modules  # no half-run module left for the next import
try:
    import deferred_broken
except ZeroDivisionError:
    pass
else:
    raise AssertionError("the next import must raise the error again")
print("ok")
"""


def test_hooks_on_imports_and_deferred_modules(tmp_path: Path) -> None:
    (tmp_path / "hooked_mod.py").write_text("VALUE = 42\n")
    (tmp_path / "deferred_mod.py").write_text("import sys\nsys.deferred_ran = True\nran = True\n")
    (tmp_path / "deferred_hooked.py").write_text("VALUE = 7\n")
    (tmp_path / "deferred_broken.py").write_text("PARTLY = 1\n1 / 0\n")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(CHECKS)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": f"{tmp_path}:{Path(__file__).resolve().parents[2]}"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert "a hook on the import of hooked_mod failed" in done.stderr and "ZeroDivisionError" in done.stderr


def test_httpx_is_instrumented_once_imported_and_wrapt_never_loaded() -> None:
    code = (
        "import sys\n"
        "from hub.telemetry.setup import instrument_httpx_when_imported\n"
        "instrument_httpx_when_imported()\n"
        "assert 'httpx' not in sys.modules and 'wrapt' not in sys.modules\n"
        "import httpx\n"
        "from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor\n"
        "assert HTTPXClientInstrumentor().is_instrumented_by_opentelemetry\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
