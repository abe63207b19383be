"""``python`` tasks call only allowed modules (HUB_PYTHON_MODULES; by default the project's own):
refused when the flow is validated and again when the step runs, before anything is imported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hub.errors import FlowError
from hub.flow.loader import load_text
from hub.testing import run_flow


def test_a_stdlib_function_is_refused_at_validation_with_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_PYTHON_MODULES", raising=False)
    with pytest.raises(FlowError) as info:
        load_text("id: t\ntasks:\n  - id: shell\n    type: python\n    function: 'os:system'\n"
                  "    args: ['touch /tmp/pwned']\n", "flow.yaml")
    (location,) = [str(loc) for loc in info.value.locations]
    assert location.startswith("flow.yaml:5:15: tasks[0].function: module 'os' is not one of the project's own modules")
    assert "HUB_PYTHON_MODULES=os" in location
    with pytest.raises(FlowError, match="the hub's own code"):
        load_text("id: t\ntasks:\n  - {id: a, type: python, function: 'hub.cli:main'}\n")


def test_a_function_named_by_an_expression_is_refused_when_it_runs(tmp_path: Path, store) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    flow = """
id: t
inputs: [{id: fn, type: string}, {id: arg, type: string}]
tasks:
  - {id: call, type: python, function: "{{ inputs.fn }}", args: ["{{ inputs.arg }}"]}
"""
    for fn in ("os:system", "tests.helpers:os.system", "subprocess:getoutput"):
        result = run_flow(flow, {"fn": fn, "arg": f"touch {marker}"}, store=store)
        assert result.state == "FAILED", fn
        error = result.step("call")["error"]
        assert "not one of the project's own modules" in error["message"] or "defined in another module" in error["message"]
        assert error.get("retryable") in (False, None)
    assert not marker.exists()
    # the project's own functions run (the tests package lives under the current directory)
    ok = run_flow(flow.replace('args: ["{{ inputs.arg }}"]', "kwargs: {message: x}"), {"fn": "tests.helpers:always_fails", "arg": ""}, store=store)
    assert ok.step("call")["error"]["message"] == "ValueError: x"


def test_the_setting_names_the_allowed_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    flow = "id: t\ntasks:\n  - {id: dump, type: python, function: 'json:dumps', args: [[1, 2]]}\n"
    monkeypatch.setenv("HUB_PYTHON_MODULES", "json, tests")
    assert run_flow(flow, python_modules="json, tests").output("dump") == "[1, 2]"
    monkeypatch.setenv("HUB_PYTHON_MODULES", "tests")
    with pytest.raises(FlowError, match=r"module 'json' is not in HUB_PYTHON_MODULES \(tests\)"):
        load_text(flow)
    monkeypatch.setenv("HUB_PYTHON_MODULES", "*")
    assert run_flow(flow, python_modules="*").output("dump") == "[1, 2]"


def test_project_means_the_current_directory_not_its_virtual_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_PYTHON_MODULES", raising=False)
    for place in ("project", "elsewhere"):
        package = tmp_path / place / f"shop_{place}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "stock.py").write_text("def check(sku):\n    return {'sku': sku, 'left': 3}\n")
        monkeypatch.syspath_prepend(str(tmp_path / place))
    monkeypatch.chdir(tmp_path / "project")
    flow = "id: t\ntasks:\n  - {id: check, type: python, function: 'shop_project.stock:check', kwargs: {sku: A1}}\n"
    assert run_flow(flow).output("check") == {"sku": "A1", "left": 3}
    with pytest.raises(FlowError, match="shop_elsewhere.stock' is not one of the project's own modules"):
        load_text(flow.replace("shop_project", "shop_elsewhere"))
    for name in [m for m in sys.modules if m.startswith("shop_")]:
        del sys.modules[name]
