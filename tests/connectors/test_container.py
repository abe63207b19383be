"""The ``container`` task with the real ``docker`` SDK against a stand-in Docker Engine API on a unix
socket (tests/fakes/docker_engine.py: its containers run their command as local processes), and
against a real engine when one answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from connectors.container.engine import LABEL_EXECUTION, LABEL_STEP, DockerSettings
from connectors.container.sweep import sweep_containers
from hub.testing import make_engine, run_flow
from tests.fakes.docker_engine import FakeDockerEngine, serve_unix

IMAGE = "python:3.12-slim"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDockerEngine]:
    engine = FakeDockerEngine(images={"busybox:latest"}, registry={f"{IMAGE}"})
    with serve_unix(engine.app, tmp_path / "docker.sock") as url:
        monkeypatch.setenv("HUB_DOCKER_HOST", url)
        yield engine


def _flow(step: str) -> str:
    return "id: c\ntasks:\n  - id: job\n    type: container\n" + "".join(f"    {line}\n" for line in step.strip().splitlines())


def test_a_container_runs_with_files_limits_and_no_network_and_is_removed(fake: FakeDockerEngine, tmp_path: Path) -> None:
    flow = _flow(
        f"""
image: {IMAGE}
cpus: 1.5
memory: 256m
env: {{MODE: batch}}
input_files: {{rows.json: [1, 2, 3]}}
output_files: [scores.json]
command:
  - python3
  - -c
  - |
    import json, os, sys
    rows = json.load(open("rows.json"))
    json.dump([r * 10 for r in rows], open("scores.json", "w"))
    print("scored", len(rows), "rows in", os.environ["MODE"], "mode")
    print("a warning", file=sys.stderr)
    print('::outputs:: {{"rows": %d}}' % len(rows))
"""
    )
    result = run_flow(flow, home=tmp_path / "home")
    assert result.state == "SUCCESS", result.error
    out = result.output("job")
    assert out["exit_code"] == 0 and out["outputs"] == {"rows": 3}
    assert json.loads(result.engine.store.get_blob(out["files"][0]["blob"][5:])) == [10, 20, 30]
    logs = [m["message"] for m in result.engine.store.logs(result.id)]
    assert "container stdout: scored 3 rows in batch mode" in logs and "container stderr: a warning" in logs
    assert fake.pulls == [IMAGE]  # if_missing: pulled once, it was not there
    assert fake.containers == {}  # removed afterwards
    [created] = [c for c in fake.calls if c[0] == "create"]
    assert created == ("create", IMAGE)


def test_what_the_engine_is_asked_for(fake: FakeDockerEngine, tmp_path: Path) -> None:
    """Limits, no network by default, labels, the working directory bound at its mount point."""
    flow = _flow("image: busybox\ncpus: 0.5\nmemory: 64m\nuser: '1000:1000'\ncommand: [sh, -c, 'pwd > where.txt']\noutput_files: [where.txt]")
    result = run_flow(flow, home=tmp_path / "home")
    assert result.state == "SUCCESS", result.error
    [body] = fake.created
    host = body["HostConfig"]
    assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 64 * 1024 * 1024
    assert host["NetworkMode"] == "none" and body["NetworkDisabled"] is True
    assert body["WorkingDir"] == "/hub/work" and host["Binds"][0].endswith(":/hub/work:rw")
    assert body["User"] == "1000:1000"
    assert body["Labels"] == {LABEL_EXECUTION: result.id, LABEL_STEP: "job", "hub.flow": "c"}
    bound = host["Binds"][0].split(":")[0]
    assert not Path(bound).exists()  # the temporary working directory is removed afterwards


def test_pull_never_fails_clearly_when_the_image_is_missing(fake: FakeDockerEngine, tmp_path: Path) -> None:
    result = run_flow(_flow(f"image: {IMAGE}\npull: never\ncommand: ['true']"), home=tmp_path / "home")
    assert result.state == "FAILED"
    assert f"image {IMAGE} is not on the engine and pull is 'never'" in result.error["message"]
    assert fake.pulls == []


def test_an_image_the_registry_does_not_have_fails_the_step(fake: FakeDockerEngine, tmp_path: Path) -> None:
    result = run_flow(_flow("image: acme/nope:1\ncommand: ['true']"), home=tmp_path / "home")
    assert result.state == "FAILED"
    assert "pull access denied for acme/nope:1" in result.error["message"]


def test_a_non_zero_exit_fails_with_the_last_stderr_lines(fake: FakeDockerEngine, tmp_path: Path) -> None:
    flow = _flow("image: busybox\nstderr_lines: 2\ncommand: [sh, -c, 'echo one >&2; echo two >&2; echo three >&2; exit 4']")
    result = run_flow(flow, home=tmp_path / "home")
    assert result.state == "FAILED"
    error = result.step("job")["error"]
    assert error["message"] == "container exited with code 4; last lines of stderr:\ntwo\nthree"
    assert error["data"] == {"exit_code": 4} and error["retryable"] is False
    assert fake.containers == {}


def test_timeout_kills_and_removes_the_container(fake: FakeDockerEngine, tmp_path: Path) -> None:
    result = run_flow(_flow("image: busybox\ntimeout: 1s\ncommand: [sh, -c, 'echo started; sleep 300']"), home=tmp_path / "home")
    assert result.state == "FAILED"
    assert "timed out after 1s" in result.error["message"]
    assert ("kill", next(c[1] for c in fake.calls if c[0] == "start")) in fake.calls
    assert fake.containers == {}


def test_secrets_in_env_are_redacted_in_the_log(fake: FakeDockerEngine, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HUB_SECRET_MODEL_KEY", "mk-very-secret-1")
    engine = make_engine(home=tmp_path / "home")
    result = run_flow(_flow("image: busybox\nenv: {KEY: \"{{ secret('MODEL_KEY') }}\"}\ncommand: [sh, -c, 'echo key=$KEY']"), engine=engine)
    assert result.state == "SUCCESS", result.error
    assert "mk-very-secret-1" not in repr(engine.store.logs(result.id)) + repr(engine.store.step_runs(result.id))
    assert "container stdout: key=******" in [m["message"] for m in engine.store.logs(result.id)]


def test_the_sweeper_removes_containers_of_executions_no_longer_running(fake: FakeDockerEngine, tmp_path: Path) -> None:
    """A worker died mid-step and its execution was ended since (cancelled, failed over): its
    container still runs, labelled with the execution, and only the sweeper can remove it. A
    RUNNING execution's container stays (its worker may be alive)."""
    engine = make_engine(home=tmp_path / "home")
    ended = run_flow("id: f\ntasks: [{id: a, type: set, values: {x: 1}}]", engine=engine)
    live = run_flow("id: f\ntasks: [{id: a, type: set, values: {x: 1}}]", engine=engine)
    engine.store.update_execution(live.id, state="RUNNING")
    client = docker.APIClient(base_url=str(DockerSettings().host))
    orphan = client.create_container("busybox", command=["sleep", "300"], labels={LABEL_EXECUTION: ended.id, LABEL_STEP: "job"})
    client.start(orphan["Id"])
    unknown = client.create_container("busybox", command=["true"], labels={LABEL_EXECUTION: "no-such-execution"})
    kept = client.create_container("busybox", command=["true"], labels={LABEL_EXECUTION: live.id})
    foreign = client.create_container("busybox", command=["true"], labels={"other": "x"})
    removed = sweep_containers(engine)
    assert sorted(removed) == sorted([orphan["Id"], unknown["Id"]])
    assert sorted(c["Id"] for c in client.containers(all=True)) == sorted([kept["Id"], foreign["Id"]])
    assert sweep_containers(engine) == []


CRASH_FLOW = """
id: crashy
inputs: [{id: flag, type: string}]
tasks:
  - id: job
    type: container
    image: busybox
    command: [sh, -c, 'if [ -f "$FLAG" ]; then echo second run; exit 0; fi; touch "$FLAG"; echo first run; sleep 300']
    env: {FLAG: "{{ inputs.flag }}"}
"""


def test_a_worker_killed_mid_step_leaves_no_container_behind(fake: FakeDockerEngine, sqlite_store, tmp_path: Path) -> None:
    """SIGKILL the process running a container step: its container survives it. When the
    execution is resumed, the step's re-run removes the previous attempt's container first."""
    url = sqlite_store.engine.url.render_as_string(hide_password=False)
    (tmp_path / "crashy.yaml").write_text(CRASH_FLOW)
    env = dict(os.environ, HUB_HOME=str(tmp_path / "home"), HUB_DATABASE_URL=url, PYTHONPATH=str(ROOT))
    hub = [sys.executable, "-m", "hub.cli"]
    flag = tmp_path / "flag"
    proc = subprocess.Popen([*hub, "run", str(tmp_path / "crashy.yaml"), "-i", f"flag={flag}", "--flows", str(tmp_path / "none")],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (flag.exists() and _step_running(sqlite_store)):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the container step never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    [orphan] = list(fake.containers)
    assert fake.containers[orphan].status == "running"
    resumed = subprocess.run([*hub, "resume", "--flows", str(tmp_path / "none")], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    [execution] = sqlite_store.list_executions(flow_id="crashy")
    assert execution["state"] == "SUCCESS", execution["error"]
    assert ("remove", orphan) in fake.calls and fake.containers == {}
    assert [c[0] for c in fake.calls].count("start") == 2


def _step_running(store) -> bool:  # type: ignore[no-untyped-def]
    return any(row["path"] == "job" and row["state"] == "RUNNING"
               for execution in store.list_executions(flow_id="crashy") for row in store.step_runs(execution["id"]))


def test_a_real_engine_when_one_answers(tmp_path: Path) -> None:
    """Runs a real container when a Docker engine answers (HUB_DOCKER_HOST, DOCKER_HOST or the local socket)."""
    try:
        client = docker.from_env(timeout=5)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no engine here
        print(f"no Docker engine answers: {exc}")
        pytest.skip(f"no Docker engine answers ({type(exc).__name__}: {exc})")
    client.close()
    flow = _flow("image: busybox:latest\ninput_files: {in.txt: hello}\noutput_files: [out.txt]\ncommand: [sh, -c, 'tr a-z A-Z < in.txt > out.txt; echo done']")
    result = run_flow(flow, home=tmp_path / "home")
    assert result.state == "SUCCESS", result.error
    assert result.engine.store.get_blob(result.output("job")["files"][0]["blob"][5:]) == b"HELLO"


def test_pull_always_pulls_an_image_already_there(fake: FakeDockerEngine, tmp_path: Path) -> None:
    fake.images.add(IMAGE)
    result = run_flow(_flow(f"image: {IMAGE}\npull: always\ncommand: ['true']"), home=tmp_path / "home")
    assert result.state == "SUCCESS", result.error
    assert fake.pulls == [IMAGE]


def test_an_engine_that_does_not_answer_is_a_clear_retryable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DOCKER_HOST", f"unix://{tmp_path / 'nobody.sock'}")
    result = run_flow(_flow("image: busybox\ncommand: ['true']"), home=tmp_path / "home")
    assert result.state == "FAILED"
    error = result.step("job")["error"]
    assert "the engine cannot be reached" in error["message"] and "HUB_DOCKER_HOST" in error["message"]
    assert error["retryable"] is True


def test_the_sweeper_without_a_docker_engine_does_not_load_the_sdk(tmp_path: Path) -> None:
    """No HUB_DOCKER_HOST, no DOCKER_HOST, no local socket: nothing to sweep, and a worker's
    periodic sweep does not pull the docker SDK (and requests) into its memory."""
    code = (
        "import sys, connectors.container.sweep as s\n"
        "s.DEFAULT_SOCKET = sys.argv[1]\n"
        "assert s.sweep_containers(None) == []\n"
        "print('docker' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HUB_DOCKER_HOST", "DOCKER_HOST")}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "no.sock")], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
