"""The ``script`` task as a flow author uses it: bash, python3 and node scripts run by the real
engine, with input and output files, structured outputs, a timeout that kills the process tree,
failures quoting stderr, and secrets kept out of the stored log."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from hub.errors import FlowError
from hub.flow.loader import load_text
from hub.testing import make_engine, run_flow


def _flow(step: str, inputs: str = "") -> str:
    return f"id: s\n{inputs}tasks:\n  - id: run\n    type: script\n" + "".join(f"    {line}\n" for line in step.strip().splitlines())


def _logs(result) -> list[str]:
    return [row["message"] for row in result.engine.store.logs(result.id)]


def test_bash_script_reads_input_files_writes_output_files_and_returns_outputs(tmp_path: Path) -> None:
    flow = _flow(
        """
interpreter: bash
input_files:
  names.txt: "{{ inputs.names | join('\\n') }}\\n"
  config.json: {greeting: hello}
output_files: ["out/*.txt"]
script: |
  mkdir -p out
  greeting=$(python3 -c 'import json; print(json.load(open("config.json"))["greeting"])')
  while read -r name || [ -n "$name" ]; do echo "$greeting $name" >> out/greetings.txt; done < names.txt
  echo "wrote $(wc -l < out/greetings.txt) lines"
  echo '::outputs:: {"count": 3}'
  echo '::outputs:: {"first": "ada"}'
""",
        "inputs:\n  - {id: names, type: list}\n",
    )
    result = run_flow(flow, {"names": ["ada", "bob", "cy"]}, home=tmp_path)
    assert result.state == "SUCCESS", result.error
    out = result.output("run")
    assert out["exit_code"] == 0
    assert out["outputs"] == {"count": 3, "first": "ada"}
    assert out["stdout"] == "wrote 3 lines"
    [file] = out["files"]
    assert file["name"] == "out/greetings.txt" and file["content_type"] == "text/plain"
    content = result.engine.store.get_blob(file["blob"].removeprefix("blob:"))
    assert content == b"hello ada\nhello bob\nhello cy\n" and file["size"] == len(content)
    assert "script stdout: wrote 3 lines" in _logs(result)


def test_python3_script_writes_outputs_json_and_its_workdir_is_removed(tmp_path: Path) -> None:
    flow = _flow(
        """
interpreter: python3
input_files: {rows.csv: "a,b\\n1,2\\n3,4\\n"}
output_files: ["*.json", "report.*"]
script: |
  import csv, json, os, sys
  rows = list(csv.DictReader(open("rows.csv")))
  total = sum(int(r["a"]) + int(r["b"]) for r in rows)
  print("rows:", len(rows))
  print("warning: just a note", file=sys.stderr)
  json.dump({"total": total, "cwd": os.getcwd()}, open("outputs.json", "w"))
  open("report.md", "w").write(f"# Total\\n{total}\\n")
"""
    )
    result = run_flow(flow, home=tmp_path)
    assert result.state == "SUCCESS", result.error
    out = result.output("run")
    assert out["outputs"]["total"] == 10
    assert sorted(f["name"] for f in out["files"]) == ["outputs.json", "report.md"]
    assert not Path(out["outputs"]["cwd"]).exists()  # the temporary working directory is gone
    logs = _logs(result)
    assert "script stdout: rows: 2" in logs and "script stderr: warning: just a note" in logs


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed on this machine")
def test_node_script(tmp_path: Path) -> None:
    flow = _flow(
        """
interpreter: node
input_files: {data.json: [1, 2, 3, 4]}
output_files: [squares.json]
script: |
  const fs = require("fs");
  const data = JSON.parse(fs.readFileSync("data.json", "utf8"));
  const squares = data.map((x) => x * x);
  fs.writeFileSync("squares.json", JSON.stringify(squares));
  console.log("::outputs:: " + JSON.stringify({sum: squares.reduce((a, b) => a + b, 0)}));
"""
    )
    result = run_flow(flow, home=tmp_path)
    assert result.state == "SUCCESS", result.error
    out = result.output("run")
    assert out["outputs"] == {"sum": 30}
    assert json.loads(result.engine.store.get_blob(out["files"][0]["blob"][5:])) == [1, 4, 9, 16]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in state  # a zombie waiting for its reaper runs nothing


def test_timeout_kills_the_whole_process_tree(tmp_path: Path) -> None:
    flow = _flow(
        """
interpreter: bash
timeout: 1s
kill_grace: 0.5
script: |
  trap '' TERM
  bash -c 'trap "" TERM; sleep 300' &
  echo "grandchild $!"
  wait
"""
    )
    result = run_flow(flow, home=tmp_path)
    assert result.state == "FAILED"
    assert "timed out after 1s" in result.error["message"]
    [line] = [m for m in _logs(result) if "grandchild" in m]
    pid = int(re.search(r"grandchild (\d+)", line).group(1))
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid), f"grandchild {pid} survived the timeout"


def test_background_children_do_not_outlive_a_finished_script(tmp_path: Path) -> None:
    result = run_flow(_flow("script: |\n  sleep 300 &\n  echo \"bg $!\"\n"), home=tmp_path)
    assert result.state == "SUCCESS", result.error
    pid = int(result.output("run")["stdout"].split()[1])
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)


def test_a_failing_script_fails_the_step_with_the_last_lines_of_stderr(tmp_path: Path) -> None:
    flow = _flow(
        """
interpreter: python3
stderr_lines: 2
script: |
  import sys
  for i in range(5):
      print(f"problem {i}", file=sys.stderr)
  sys.exit(3)
"""
    )
    result = run_flow(flow, home=tmp_path)
    assert result.state == "FAILED"
    error = result.step("run")["error"]
    assert error["message"] == "script exited with code 3; last lines of stderr:\nproblem 3\nproblem 4"
    assert error["retryable"] is False and error["data"] == {"exit_code": 3}


def test_secrets_in_env_are_redacted_in_the_stored_log_and_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HUB_SECRET_API_TOKEN", "tok-s3cr3t-value")
    engine = make_engine(home=tmp_path)
    flow = _flow(
        """
env: {TOKEN: "{{ secret('API_TOKEN') }}", MODE: test}
script: |
  echo "calling with $TOKEN in $MODE"
  echo "denied for $TOKEN" >&2
  exit 1
"""
    )
    result = run_flow(flow, engine=engine)
    assert result.state == "FAILED"
    everything = repr(engine.store.logs(result.id)) + repr(engine.store.step_runs(result.id))
    assert "tok-s3cr3t-value" not in everything
    assert "script stdout: calling with ****** in test" in _logs(result)
    assert "denied for ******" in result.step("run")["error"]["message"]


def test_the_hub_environment_is_not_inherited(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HUB_SECRET_LEAK", "should-not-be-seen")
    result = run_flow(_flow("command: [python3, -c, 'import os; print(sorted(os.environ))']"), home=tmp_path)
    assert result.state == "SUCCESS", result.error
    names = result.output("run")["stdout"]
    assert "HUB_SECRET_LEAK" not in names and "HUB_EXECUTION_ID" in names and "PATH" in names


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("command: 'true'\ninput_files: {../escape.txt: x}", "relative path inside the working directory"),
        ("interpreter: no-such-interpreter-xyz\nscript: 'echo'", "cannot start 'no-such-interpreter-xyz'"),
        ("script: 'echo \"::outputs:: [1]\"'", "must be followed by a JSON object"),
    ],
)
def test_mistakes_are_clear_errors(tmp_path: Path, step: str, message: str) -> None:
    result = run_flow(_flow(step), home=tmp_path)
    assert result.state == "FAILED"
    assert message in result.error["message"]


def test_a_step_with_both_script_and_command_does_not_load() -> None:
    with pytest.raises(FlowError, match="exactly one of script"):
        load_text(_flow("script: 'echo hi'\ncommand: 'echo hi'"))


def test_the_step_runs_in_a_process_group_of_its_own(tmp_path: Path) -> None:
    result = run_flow(_flow("command: [python3, -c, 'import os; print(os.getpgid(0), os.getpid())']"), home=tmp_path)
    pgid, pid = map(int, result.output("run")["stdout"].split())
    assert pgid == pid != os.getpgid(0)


def test_a_templated_script_loads_and_runs(tmp_path: Path) -> None:
    """`script` from an expression: the one-of check waits until the value is rendered."""
    flow = _flow("script: \"{{ inputs.code }}\"", "inputs:\n  - {id: code, type: string}\n")
    result = run_flow(flow, {"code": "echo from input"}, home=tmp_path)
    assert result.state == "SUCCESS", result.error
    assert result.output("run")["stdout"] == "from input"
