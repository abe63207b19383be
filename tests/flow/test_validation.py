"""A flow file with mistakes gets every error at once, each with file, line, column and path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.errors import FlowError
from hub.flow.loader import load_file, load_text
from hub.flow.schema import flow_json_schema

ROOT = Path(__file__).resolve().parents[2]


def errors_of(text: str) -> list[str]:
    with pytest.raises(FlowError) as info:
        load_text(text, "flow.yaml")
    return [str(loc) for loc in info.value.locations]


def test_three_mistakes_three_precise_messages() -> None:
    text = """\
id: orders
tasks:
  - id: fetch
    type: http.requets
    url: https://example.com
  - id: note
    type: log
    mesage: "hello"
  - id: total
    type: set
    values: {x: "{{ outputs.fetsh.body }}"}
"""
    assert errors_of(text) == [
        "flow.yaml:4:11: tasks[0].type: unknown task type 'http.requets'; did you mean 'http.request'?",
        "flow.yaml:8:5: tasks[1].mesage: unknown key 'mesage'; did you mean 'message'?",
        "flow.yaml:11:17: tasks[2].values.x: outputs.fetsh: there is no task 'fetsh' in this flow; did you mean 'fetch'?",
    ]


def test_unknown_top_level_key_and_common_task_key() -> None:
    errors = errors_of("id: x\nretires: 2\ntasks:\n  - {id: a, type: log, message: hi, alow_failure: true}\n")
    assert "flow.yaml:2:1: retires: unknown key 'retires'; did you mean 'retry'?" in errors
    assert any("tasks[0].alow_failure: unknown key 'alow_failure'; did you mean 'allow_failure'?" in e for e in errors)


def test_yaml_syntax_error_has_position() -> None:
    errors = errors_of("id: x\ntasks:\n  - id: a\n    type: log\n   message: [unclosed\n")
    assert len(errors) == 1
    assert errors[0].startswith("flow.yaml:") and "invalid YAML" in errors[0]


def test_a_file_that_is_not_utf8_is_a_flow_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("id: x\ntasks:\n  - {id: a, type: log, message: caf\xe9}\n".encode("latin-1"))
    with pytest.raises(FlowError) as info:
        load_file(path)
    assert [str(loc) for loc in info.value.locations] == [f"{path}: <root>: not UTF-8 text (byte 0xe9 at offset 48)"]


def test_duplicate_task_ids_point_at_first_use() -> None:
    errors = errors_of("id: x\ntasks:\n  - {id: a, type: log, message: hi}\n  - {id: a, type: log, message: again}\n")
    assert errors == ["flow.yaml:4:10: tasks[1].id: task id 'a' is already used (line 3); task ids must be unique in a flow"]


def test_reference_to_downstream_task_is_an_error() -> None:
    errors = errors_of(
        "id: x\ntasks:\n  - {id: a, type: log, message: '{{ outputs.b }}'}\n  - {id: b, type: set, values: {v: 1}}\n"
    )
    assert errors == [
        "flow.yaml:3:33: tasks[0].message: outputs.b: task 'b' does not run before this point, so its output is not available here"
    ]


def test_parallel_siblings_are_not_upstream_but_earlier_tasks_are() -> None:
    text = """\
id: x
tasks:
  - {id: first, type: set, values: {v: 1}}
  - id: both
    type: parallel
    tasks:
      - {id: left, type: log, message: "{{ outputs.first.v }}"}
      - {id: right, type: log, message: "{{ outputs.left }}"}
"""
    errors = errors_of(text)
    assert len(errors) == 1 and "tasks[1].tasks[1].message: outputs.left" in errors[0]


def test_item_outside_for_each_and_error_outside_handlers() -> None:
    text = """\
id: x
tasks:
  - {id: a, type: log, message: "{{ item }}"}
  - {id: b, type: log, message: "{{ error.message }}"}
errors:
  - {id: c, type: log, message: "{{ error.message }} {{ outputs.a }}"}
"""
    errors = errors_of(text)
    assert len(errors) == 2
    assert "'item' and 'index' exist only inside a for_each" in errors[0]
    assert "'error' exists only in 'errors' and 'finally' handlers" in errors[1]


def test_undeclared_input_and_variable() -> None:
    text = """\
id: x
inputs: [{id: email, type: string}]
variables: {threshold: 1}
tasks:
  - {id: a, type: log, message: "{{ inputs.mail }} {{ vars.treshold }}"}
"""
    errors = errors_of(text)
    assert any("inputs.mail: no input 'mail' is declared; did you mean 'email'?" in e for e in errors)
    assert any("vars.treshold: no variable 'treshold' is declared; did you mean 'threshold'?" in e for e in errors)


def test_bad_expression_syntax_and_unknown_filter() -> None:
    errors = errors_of("id: x\ntasks:\n  - {id: a, type: log, message: '{{ 1 + }}'}\n  - {id: b, type: log, message: '{{ 1 | nope }}'}\n")
    assert len(errors) == 2
    assert "expression syntax error" in errors[0]
    assert "nope" in errors[1]


def test_parameter_type_errors_and_templates_allowed() -> None:
    errors = errors_of(
        "id: x\ntasks:\n  - {id: a, type: for_each, items: [1], concurrency: lots, tasks: [{id: b, type: log, message: hi}]}\n"
    )
    assert len(errors) == 1 and "tasks[0].concurrency" in errors[0]
    load_text("id: x\ninputs: [{id: n, type: int}]\ntasks:\n  - {id: a, type: for_each, items: [1], concurrency: '{{ inputs.n }}', tasks: [{id: b, type: log, message: hi}]}\n")


def test_triggers_inputs_and_durations_are_checked() -> None:
    text = """\
id: x
timeout: soon
inputs:
  - {id: kind, type: enum}
triggers:
  - {id: nightly, type: schedule, cron: "99 * * * *"}
  - {id: hook, type: webhok}
tasks:
  - {id: a, type: log, message: hi, timeout: 5 minutes please}
"""
    errors = errors_of(text)
    joined = "\n".join(errors)
    assert "timeout" in joined and "is not a duration" in joined
    assert "an enum input needs 'values'" in joined
    assert "not a valid cron expression" in joined
    assert "webhok" in joined
    assert len(errors) == 5


def test_shipped_flows_validate_and_match_the_schema() -> None:
    import jsonschema
    import yaml

    schema = flow_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    files = sorted((ROOT / "flows").glob("*.yaml"))
    assert files, "the project ships example flows"
    for path in files:
        load_file(path)
        problems = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not problems, f"{path}: {problems[0].message}"


def test_schema_rejects_unknown_keys_for_editors() -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(flow_json_schema())
    bad = {"id": "x", "tasks": [{"id": "a", "type": "log", "mesage": "hi"}]}
    assert list(validator.iter_errors(bad))
    good = {"id": "x", "tasks": [{"id": "a", "type": "log", "message": "{{ inputs }}"}]}
    assert not list(validator.iter_errors(good))
    assert json.dumps(flow_json_schema())
