"""The plugin interface: a third-party package (tests/sample_plugin, installed with its
``hub.plugins`` entry point) adds a task kind, a trigger type, a command and an API route
without a line of the hub changed; a broken plugin is reported by name and the rest work."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.core.plugins import BUILTIN_PLUGINS, PluginAPI, PluginError, Plugins, Ref
from hub.core.registry import Registry
from hub.testing import make_engine, run_flow

ROOT = Path(__file__).resolve().parents[2]

GREET = """
id: greeter
namespace: plug
inputs: [{id: who, type: string, default: Ada}]
tasks:
  - {id: hello, type: sample.greet, name: "{{ inputs.who }}", punctuation: "?"}
outputs: {text: "{{ outputs.hello.text }}"}
"""

TICKING = """
id: ticking
namespace: plug
inputs: [{id: n, type: int}]
triggers:
  - {id: tick, type: sample.ticker, count: 3, every: 0.01, inputs: {n: "{{ trigger.tick }}"}}
tasks:
  - {id: double, type: set, values: {twice: "{{ inputs.n * 2 }}"}}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def hub_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=cwd or ROOT)


def test_a_third_party_task_kind_runs_in_a_flow(store) -> None:  # type: ignore[no-untyped-def]
    result = run_flow(GREET, {"who": "Grace"}, store=store)
    assert result.state == "SUCCESS", result.error
    assert result.outputs == {"text": "Hello, Grace?"}
    assert result.step("hello")["output"]["execution"] == result.id


def test_a_third_party_task_kind_is_validated_like_a_built_in() -> None:
    from hub.errors import FlowError
    from hub.flow.loader import load_text

    with pytest.raises(FlowError) as caught:
        load_text(GREET.replace("punctuation:", "punctuaton:"))
    assert "unknown key 'punctuaton'; did you mean 'punctuation'?" in str(caught.value)
    with pytest.raises(FlowError) as caught:
        load_text(GREET.replace("sample.greet", "sample.gret"))
    assert "did you mean 'sample.greet'?" in str(caught.value)


@pytest.mark.anyio
async def test_a_third_party_trigger_type_starts_executions(sqlite_store) -> None:  # type: ignore[no-untyped-def]
    from hub.triggers.service import TriggerService

    engine = make_engine(sqlite_store)
    engine.deploy(engine.catalog.loader.load_text(TICKING))
    service = TriggerService(engine, refresh=0.05)
    await service.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = sqlite_store.list_executions(namespace="plug", flow_id="ticking", limit=10)
            if len(rows) == 3 and all(r["state"] == "SUCCESS" for r in rows):
                break
            await asyncio.sleep(0.05)
    finally:
        await service.stop()
    rows = sqlite_store.list_executions(namespace="plug", flow_id="ticking", limit=10)
    assert sorted(r["inputs"]["n"] for r in rows) == [0, 1, 2]
    assert {r["trigger"]["type"] for r in rows} == {"sample.ticker"}
    states = [s for s in __import__("hub.triggers", fromlist=["trigger_states"]).trigger_states(sqlite_store)
              if s["flow_id"] == "ticking"]
    assert states[0]["fire_count"] == 3 and states[0]["last_error"] is None


def test_a_third_party_trigger_is_validated_by_its_config() -> None:
    from hub.errors import FlowError
    from hub.flow.loader import load_text

    with pytest.raises(FlowError) as caught:
        load_text(TICKING.replace("count: 3", "count: 0"))
    assert "triggers[0].count" in str(caught.value)
    with pytest.raises(FlowError) as caught:
        load_text(TICKING.replace("sample.ticker", "sample.tiker"))
    assert "unknown trigger type 'sample.tiker'" in str(caught.value)
    assert "did you mean 'sample.ticker'?" in str(caught.value)


def test_a_third_party_route_is_served() -> None:
    from hub.api.app import create_app

    engine = make_engine(None)
    with TestClient(create_app(engine, auth="open", background=False)) as client:
        answer = client.get("/v1/sample/kinds")
    assert answer.status_code == 200
    assert answer.json() == {"kinds": ["sample.greet"]}


def test_a_third_party_command_runs_and_plugins_lists_everything() -> None:
    done = hub_cli("sample")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["sample.greet"]
    listing = hub_cli("plugins", "--json")
    assert listing.returncode == 0, listing.stderr
    plugins = {p["name"]: p for p in json.loads(listing.stdout)}
    assert {name for name, _ in BUILTIN_PLUGINS} <= set(plugins)
    sample = plugins["sample"]
    assert sample["source"].startswith("entry point hub.plugins:sample = hub_sample_plugin:register")
    assert "hub-sample-plugin 0.1.0" in sample["source"]
    assert sample["contributes"] == {"task_kind": ["sample.greet"], "trigger_type": ["sample.ticker"],
                                     "router": ["hub_sample_plugin.api:router"], "command": ["sample"],
                                     "tables": ["hub_sample_plugin.tables"], "migrations": ["sample"]}
    assert plugins["email"]["contributes"]["task_kind"] == ["email.send"]
    assert "hub.triggers.service:start" in plugins["triggers"]["contributes"]["lifespan"]


def _broken_distribution(folder: Path) -> Path:
    """An installed distribution (dist-info on the path) whose plugin cannot be imported."""
    dist = folder / "acme_broken-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[hub.plugins]\nacme = acme_missing_module:register\n")
    return folder


def test_a_broken_plugin_is_reported_by_name_and_the_rest_work(tmp_path: Path) -> None:
    site = _broken_distribution(tmp_path / "site")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "HUB_HOME": str(tmp_path / "home")}
    listing = hub_cli("plugins", env=env)
    assert listing.returncode == 1
    assert "acme  FAILED  entry point hub.plugins:acme = acme_missing_module:register (acme-broken 1.0)" in listing.stdout
    assert "No module named 'acme_missing_module'" in listing.stdout
    assert "sample  ok" in listing.stdout
    flow = tmp_path / "greet.yaml"
    flow.write_text(GREET)
    ran = hub_cli("run", str(flow), "-q", "--json", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["outputs"] == {"text": "Hello, Ada?"}


def test_a_plugin_that_fails_half_way_contributes_nothing() -> None:
    def register(hub: PluginAPI) -> None:
        hub.task_kind("half.one", "hub.tasks.core:Set")
        raise RuntimeError("the second half is missing")

    plugins = Plugins((), entry_point_groups=())
    info = plugins.load(register, name="half")
    assert info.error == "RuntimeError: the second half is missing"
    assert plugins.find("task_kind", "half.one") is None


def test_a_type_registered_twice_is_an_error_of_the_second_plugin() -> None:
    plugins = Plugins((("core", "hub.tasks.plugin:register"),), entry_point_groups=())
    info = plugins.load(lambda hub: hub.task_kind("set", "hub_sample_plugin.tasks:Greet"), name="copycat")
    assert info.error == "task kind 'set' is already registered by plugin 'core'"
    assert Registry(plugins).get("set").__module__ == "hub.tasks.core"


def test_a_declared_kind_that_cannot_be_imported_names_its_plugin() -> None:
    plugins = Plugins((), entry_point_groups=())
    plugins.load(lambda hub: hub.task_kind("ghost.run", "ghost_module:Run"), name="ghosts")
    registry = Registry(plugins)
    assert "ghost.run" in registry and registry.types() == ["ghost.run"]
    with pytest.raises(PluginError, match="plugin 'ghosts': cannot load ghost_module:Run: ModuleNotFoundError"):
        registry.get("ghost.run")


def test_refs_are_module_attribute_paths() -> None:
    with pytest.raises(ValueError, match="not 'module:attribute'"):
        Ref("hub.tasks.core.Set", "x")
    assert Ref("hub.tasks.core:Set", "x").load().type == "set"


def test_a_core_flow_imports_no_connector_or_llm_code(tmp_path: Path) -> None:
    """Plugins register by name only: on an existing database, running a flow of core tasks
    loads no entry point (no connector, nor the sample plugin) and imports no LLM or approval code."""
    code = (
        "import sys\n"
        "from hub.testing import run_flow\n"
        f"r = run_flow('id: t\\ntasks:\\n  - {{id: a, type: set, values: {{x: 1}}}}\\n  - {{id: b, type: log, message: hi}}\\n',"
        f" home={str(tmp_path)!r})\n"
        "assert r.state == 'SUCCESS', r.error\n"
        "print(sorted(m for m in sys.modules if m.startswith(('connectors', 'litellm', 'hub.llm.', 'hub.approvals.', "
        "'hub_sample_plugin')) and not m.endswith('.plugin')))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr  # a new database: every plugin's tables are created
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "[]"
