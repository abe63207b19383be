"""Expressions, secrets and redaction, inputs, large outputs."""

from __future__ import annotations

import pytest

from hub.engine.inputs import check_inputs
from hub.errors import ExpressionError, InputError
from hub.flow.expressions import Scope, expressions
from hub.flow.loader import load_text
from hub.testing import make_engine, run_flow


def test_whole_expression_keeps_its_type_and_mixed_text_is_a_string() -> None:
    e = expressions()
    scope = {"outputs": Scope("outputs", {"fetch": {"body": {"a": [1, 2]}}}, "task")}
    assert e.render("{{ outputs.fetch.body }}", scope) == {"a": [1, 2]}
    assert e.render("  {{ outputs.fetch.body.a | length }} ", scope) == 2
    assert e.render("n={{ outputs.fetch.body.a | length }}", scope) == "n=2"
    assert e.render({"x": ["{{ 1 + 1 }}", "plain"]}, scope) == {"x": [2, "plain"]}


def test_a_mapping_key_wins_over_a_method_of_the_same_name() -> None:
    """Fetched data often has keys named like dict methods (keys, items, values, get, copy)."""
    e = expressions()
    body = {"keys": ["a", "b"], "items": 3, "count": 1}
    scope = {"outputs": Scope("outputs", {"fetch": {"body": body}}, "task")}
    assert e.render("{{ outputs.fetch.body.keys }}", scope) == ["a", "b"]
    assert e.render("{{ outputs.fetch.body.items }}", scope) == 3
    assert e.render("{{ outputs.fetch.body['keys'] | length }}", scope) == 2
    assert e.render("{{ {'x': 1}.keys() | list }}", {}) == ["x"]  # no such key: the method, as before
    assert e.render("{{ {'x': 1}.get('x') }}", {}) == 1


def test_filters() -> None:
    e = expressions()
    render = lambda text: e.render(text, {})  # noqa: E731
    assert render("{{ 'Ana@Example.COM' | domain }}") == "example.com"
    assert render("{{ 'https://www.acme.io/path' | domain }}") == "www.acme.io"
    assert render("{{ 'Héllo, World!' | slug }}") == "hello-world"
    assert render("{{ {'a': 1} | json }}") == '{"a": 1}'
    assert render("{{ '[1, 2]' | from_json }}") == [1, 2]
    assert render("{{ missing | default('fallback') }}") == "fallback"
    assert render("{{ 'abc' | b64encode | b64decode }}") == "abc"
    assert render("{{ [{'k': 1}, {'k': 2}] | pluck('k') }}") == [1, 2]
    assert render("{{ '2026-01-31T10:00:00Z' | date('%d.%m.%Y') }}") == "31.01.2026"


def test_sandbox_blocks_python_internals() -> None:
    with pytest.raises(ExpressionError):
        expressions().render("{{ ''.__class__.__mro__ }}", {})
    with pytest.raises(ExpressionError):
        expressions().render("{{ x.append(1) }}", {"x": [1]})
    assert expressions().render("{{ range(3) | list }}", {}) == [0, 1, 2]
    with pytest.raises(ExpressionError, match="Range too big"):  # not an empty list in disguise
        expressions().render("{{ range(10 ** 9) | list | length }}", {})


def test_task_ids_that_shadow_dict_methods_still_work() -> None:
    result = run_flow("id: x\ntasks:\n  - {id: items, type: set, values: {n: 1}}\n  - {id: keys, type: set, values: {n: '{{ outputs.items.n }}'}}\noutputs: {n: '{{ outputs.keys.n }}'}\n")
    assert result.outputs == {"n": 1}


def test_outside_data_is_never_rendered_again() -> None:
    result = run_flow(
        """
id: x
inputs: [{id: body, type: json}]
tasks:
  - {id: copy, type: set, values: {text: "{{ inputs.body.comment }}", whole: "{{ inputs.body }}"}}
  - {id: again, type: set, values: {text: "said: {{ outputs.copy.text }}"}}
""",
        {"body": {"comment": "{{ secret('HUB_DATABASE_URL') }} {% for x in range(9) %}x{% endfor %}"}},
    )
    assert result.state == "SUCCESS"
    assert result.output("copy")["text"] == "{{ secret('HUB_DATABASE_URL') }} {% for x in range(9) %}x{% endfor %}"
    assert result.output("again")["text"].startswith("said: {{ secret(")


def test_secrets_come_from_env_or_file_and_are_redacted_everywhere(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HUB_SECRET_API_TOKEN", "tok-123456789")
    (tmp_path / "secrets.env").write_text("# comment\nDB_PASSWORD='pw-abcdefgh'\n")
    engine = make_engine(home=tmp_path)
    result = run_flow(
        """
id: s
tasks:
  - id: use
    type: set
    values: {header: "Bearer {{ secret('API_TOKEN') }}", pw: "{{ secret('DB_PASSWORD') }}"}
  - {id: say, type: log, message: "token is {{ outputs.use.header }}"}
  - {id: boom, type: fail, message: "failed with {{ secret('API_TOKEN') }}"}
errors:
  - {id: handler, type: set, values: {seen: "{{ error.message }}"}}
""",
        engine=engine,
    )
    assert result.state == "FAILED"
    store = engine.store
    everything = repr(store.step_runs(result.id)) + repr(store.logs(result.id)) + repr(store.get_execution(result.id))
    assert "tok-123456789" not in everything and "pw-abcdefgh" not in everything
    assert result.output("use") == {"header": "******", "pw": "******"}  # a value made with secret(): whole
    assert store.logs(result.id)[0]["message"] == "token is ******"
    assert result.error["message"] == "******"


def test_a_value_derived_from_a_secret_is_redacted_as_a_whole(tmp_path, monkeypatch) -> None:
    """Filters and slices of a secret are not the secret's exact text, yet must not be stored:
    a rendered value whose template called secret() is masked whole (stored parameters, outputs,
    logs, errors), while the task still receives it."""
    secret = "tok-AbCdEf-123456789"
    monkeypatch.setenv("HUB_SECRET_API_TOKEN", secret)
    monkeypatch.setenv("HUB_PYTHON_MODULES", "tests")
    from tests import helpers

    flow = """
id: derived
variables: {prefix: "{{ secret('API_TOKEN')[:12] }}"}
tasks:
  - id: call
    type: python
    function: tests.helpers:keep
    kwargs:
      upper: "{{ secret('API_TOKEN') | upper }}"
      b64: "{{ secret('API_TOKEN') | b64encode }}"
      reversed: "{{ secret('API_TOKEN')[::-1] }}"
      header: "Bearer {{ secret('API_TOKEN') | lower }}"
      nested: {list: ["{{ secret('API_TOKEN') | sha256 }}"]}
      prefix: "{{ vars.prefix }}"
      plain: "no secret here"
  - {id: say, type: log, message: "prefix {{ vars.prefix }}, header {{ outputs.call.header }}"}
  - {id: boom, type: fail, message: "refused: {{ secret('API_TOKEN') | upper }}"}
"""
    engine = make_engine(home=tmp_path, python_modules="tests")
    result = run_flow(flow, engine=engine)
    assert result.state == "FAILED"
    import base64
    import hashlib

    derived = [secret.upper(), base64.b64encode(secret.encode()).decode(), secret[::-1], secret[:12],
               secret.lower(), hashlib.sha256(secret.encode()).hexdigest()]
    # the task got the real values
    assert helpers.STATE["kept"]["upper"] == secret.upper() and helpers.STATE["kept"]["prefix"] == secret[:12]
    store = engine.store
    everything = repr(store.step_runs(result.id)) + repr(store.logs(result.id)) + repr(store.get_execution(result.id))
    for value in derived:
        assert value not in everything, value
    call = result.step("call")
    assert call["params"]["kwargs"] == {"upper": "******", "b64": "******", "reversed": "******", "header": "******",
                                        "nested": {"list": ["******"]}, "prefix": "******", "plain": "no secret here"}
    assert store.logs(result.id)[0]["message"] == "prefix ******, header ******"
    assert result.error["message"] == "******"


def test_missing_secret_says_how_to_set_it(tmp_path) -> None:
    result = run_flow("id: s\ntasks:\n  - {id: use, type: log, message: \"{{ secret('NOPE') }}\"}\n", home=tmp_path)
    assert result.state == "FAILED"
    assert "secret 'NOPE' is not set; set HUB_SECRET_NOPE in the environment" in result.error["message"]


FLOW_INPUTS = load_text(
    """
id: typed
inputs:
  - {id: s, type: string, required: true}
  - {id: i, type: int, default: 3}
  - {id: f, type: float}
  - {id: b, type: bool}
  - {id: j, type: json}
  - {id: d, type: datetime}
  - {id: e, type: enum, values: [low, high]}
  - {id: l, type: list, items: int}
tasks:
  - {id: a, type: log, message: hi}
"""
)


def test_inputs_are_converted_to_their_types() -> None:
    values = check_inputs(
        FLOW_INPUTS,
        {"s": "x", "f": "1.5", "b": "yes", "j": '{"a": 1}', "d": "2026-01-31T10:00:00Z", "e": "high", "l": "1,2,3"},
    )
    assert values == {
        "s": "x", "i": 3, "f": 1.5, "b": True, "j": {"a": 1}, "d": "2026-01-31T10:00:00+00:00", "e": "high",
        "l": [1, 2, 3],
    }


def test_every_input_problem_is_reported_at_once() -> None:
    with pytest.raises(InputError) as info:
        check_inputs(FLOW_INPUTS, {"i": "three", "b": "maybe", "e": "mid", "l": ["x"], "zzz": 1, "d": "tomorrow"})
    problems = info.value.problems
    assert len(problems) == 7
    text = "\n".join(problems)
    for needle in ("'zzz' is not an input", "s: required input is missing", "i: expected an integer",
                   "b: expected true or false", "e: must be one of low, high", "l: expected an integer",
                   "d: expected an ISO 8601 date-time"):
        assert needle in text


def test_large_outputs_are_kept_out_of_the_step_record(store) -> None:
    engine = make_engine(store, inline_output_limit=1000)
    result = run_flow(
        "id: big\ntasks:\n  - {id: blob, type: python, function: 'tests.helpers:big', kwargs: {size: 50000}}\n  - {id: n, type: set, values: {len: '{{ outputs.blob | length }}'}}\n",
        engine=engine,
    )
    assert result.state == "SUCCESS"
    row = result.step("blob")
    assert row["output_ref"] and row["output"]["$blob"] == row["output_ref"]
    assert result.output("n") == {"len": 50000}
    assert result.output("blob") == "x" * 50000
