"""A flow of thousands of steps loads with every position right, and its references checked
against what runs before each step (as in a small one)."""

from __future__ import annotations

import pytest

from hub.errors import FlowError
from hub.flow.loader import FlowLoader

STEPS = 5_000


def generated(steps: int, bad: dict[int, str] | None = None) -> str:
    """``steps`` set steps on one line each (line i + 3 holds step i), each reading the one before;
    ``bad``: step number -> a line to put there instead."""
    lines = ["id: big", "namespace: scale", "tasks:"]
    for i in range(steps):
        value = "{{ outputs.s" + str(i - 1) + ".v + 1 }}" if i else "0"
        line = f"  - {{id: s{i}, type: set, values: {{v: '{value}'}}}}"
        lines.append((bad or {}).get(i, line))
    lines.append("outputs: {last: '{{ outputs.s" + str(steps - 1) + ".v }}'}")
    return "\n".join(lines) + "\n"


def test_every_step_of_a_large_flow_has_its_line() -> None:
    flow = FlowLoader(max_nodes=None).load_text(generated(STEPS), "big.yaml")
    assert len(flow.tasks) == STEPS
    for i in (0, 1, 2_500, 4_321, STEPS - 1):
        task = flow.tasks[i]
        assert (task.id, task.line, task.path) == (f"s{i}", i + 4, ("tasks", i))


def test_mistakes_deep_in_a_large_flow_are_reported_where_they_are() -> None:
    bad = {
        # a key misspelt
        3_000: "  - {id: s3000, type: set, valeus: {v: 1}}",
        # reads a step that runs after it
        4_321: "  - {id: s4321, type: set, values: {v: '{{ outputs.s4999.v }}'}}",
        # a task id used before (its first use is on line 4)
        4_998: "  - {id: s0, type: set, values: {v: '{{ outputs.s4997.v }}'}}",
    }
    with pytest.raises(FlowError) as info:
        FlowLoader(max_nodes=None).load_text(generated(STEPS, bad), "big.yaml")
    found = sorted((loc.line, loc.column, loc.message) for loc in info.value.locations)
    assert found == [
        (3_004, bad[3_000].index("valeus") + 1, "unknown key 'valeus'; did you mean 'values'?"),
        (4_325, bad[4_321].index("'{{") + 1,
         "outputs.s4999: task 's4999' does not run before this point, so its output is not available here"),
        (5_002, bad[4_998].index("s0") + 1,
         "task id 's0' is already used (line 4); task ids must be unique in a flow"),
        # the next step reads the one whose id was taken: there is no s4998 now
        (5_003, generated(STEPS).splitlines()[5_002].index("'{{") + 1,
         "outputs.s4998: there is no task 's4998' in this flow; did you mean 's998'?"),
    ]


def test_branches_see_what_ran_before_them_but_not_each_other() -> None:
    text = """
id: branches
tasks:
  - {id: a, type: set, values: {v: 1}}
  - id: choose
    type: if
    condition: "{{ outputs.a.v > 0 }}"
    then:
      - {id: b, type: set, values: {v: "{{ outputs.a.v }}"}}
    else:
      - {id: c, type: set, values: {v: "{{ outputs.b.v }}"}}
  - id: route
    type: switch
    value: "x"
    cases:
      x: [{id: d, type: set, values: {v: "{{ outputs.b.v }}"}}]
      y: [{id: e, type: set, values: {v: "{{ outputs.d.v }}"}}]
  - {id: f, type: set, values: {v: "{{ outputs.c.v }} {{ outputs.e.v }} {{ outputs.d.v }}"}}
"""
    with pytest.raises(FlowError) as info:
        FlowLoader().load_text(text)
    found = sorted((loc.line, loc.message.split(":")[0]) for loc in info.value.locations)
    assert found == [(11, "outputs.b"), (17, "outputs.d")]


def test_the_default_loader_still_refuses_a_flow_of_more_than_30000_values() -> None:
    with pytest.raises(FlowError, match="more than 30000 values"):
        FlowLoader().load_text(generated(STEPS))
