"""From production to dataset: an executed LLM call becomes a new case of an eval.

The call is found by its record id (``llm_calls.id``) or by execution and step path. Its
variables come from the step run's rendered parameters (for a prompt target) or the
execution's inputs (for a flow target); the expected output is the corrected one the reviewer
gives, or the output the model gave when none is given. The case is appended to the eval's
``dataset`` file when it has one, else inserted at the end of the eval file's ``cases`` (the
rest of the file, comments included, is left as it was).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from hub.errors import HubError, NotFound
from hub.evals import spec as S
from hub.flow import yamlpos
from hub.llm.records import CALLS, CallLog
from hub.llm.validation import extract_json
from hub.store.store import Store

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the parser eval files are read with


class DatasetError(HubError):
    """The call cannot become a case of this eval (says why and what to do)."""


def find_call(store: Store, call_id: int | None = None, execution_id: str | None = None, step: str | None = None) -> dict[str, Any]:
    """The call record: by id, or the newest accepted call of ``step`` in ``execution_id``."""
    log = CallLog(store.engine)
    if call_id is not None:
        with store.engine.connect() as conn:
            row = conn.execute(select(CALLS).where(CALLS.c.id == call_id)).first()
        if row is None:
            raise NotFound(f"there is no LLM call record {call_id}")
        return dict(row._mapping)
    if not execution_id or not step:
        raise DatasetError("name the call: a call record id, or an execution id with the step path")
    calls = log.calls(execution_id, step)
    if not calls:
        raise NotFound(f"execution {execution_id} has no LLM call at step {step!r}")
    accepted = [c for c in calls if c["status"] in ("ok", "cached")]
    return (accepted or calls)[-1]


def case_from_call(
    store: Store, loaded: S.LoadedEval, call: dict[str, Any], expected: Any = None,
    case_id: str | None = None, tags: list[str] | None = None, note: str | None = None,
) -> dict[str, Any]:
    spec = loaded.spec
    target = spec.target
    if target.prompt and call.get("prompt_name") and call["prompt_name"] != target.prompt:
        raise DatasetError(
            f"call {call['id']} used prompt {call['prompt_name']!r}, but {loaded.file} evaluates {target.prompt!r}"
        )
    execution_id = call.get("execution_id")
    if not execution_id:
        raise DatasetError(f"call {call['id']} belongs to no execution; its variables are unknown")
    case: dict[str, Any] = {"id": case_id or _free_id(spec, f"prod-{execution_id[:8]}-{call['path'] or 'call'}")}
    if target.flow:
        case["inputs"] = store.get_execution(execution_id)["inputs"]
    else:
        steps = [s for s in store.step_runs(execution_id) if s["path"] == call["path"]]
        if not steps or not isinstance(steps[-1]["params"], dict):
            raise DatasetError(f"execution {execution_id} has no stored parameters for step {call['path']!r}")
        case["vars"] = dict(steps[-1]["params"].get("vars") or {})
    if expected is None:
        expected = _output_of(call)
    case["expected"] = expected
    case["metadata"] = {
        "source": {
            "call_id": call["id"], "execution_id": execution_id, "step": call["path"],
            "prompt_version": call.get("prompt_version"), "model": call.get("model"),
        },
        **({"note": note} if note else {}),
    }
    if tags:
        case["tags"] = list(tags)
    S.Case.model_validate(case)
    return case


def _output_of(call: dict[str, Any]) -> Any:
    text = call.get("response") or ""
    try:
        return extract_json(text)
    except ValueError:
        return text


def _free_id(spec: S.EvalSpec, wanted: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_.\-]", "-", wanted).strip("-") or "case"
    taken = {spec.case_id(i) for i in range(len(spec.cases))}
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def add_case(path: str | Path, case: dict[str, Any]) -> Path:
    """Write ``case`` into the eval's dataset file or the eval file; returns the file written.
    The eval is loaded again afterwards; on a problem the file is restored."""
    path = Path(path)
    loaded = S.load_file(path)
    if any(loaded.spec.case_id(i) == case["id"] for i in range(len(loaded.spec.cases))):
        raise DatasetError(f"{path} already has a case {case['id']!r}; give another id")
    target = loaded.directory / loaded.spec.dataset if loaded.spec.dataset else path
    before = target.read_text() if target.is_file() else ""
    if loaded.spec.dataset:
        after = before + ("" if before.endswith("\n") or not before else "\n") + _item(case, 0)
    else:
        after = _insert_case(before, case)
    target.write_text(after)
    try:
        S.load_file(path)
    except HubError:
        target.write_text(before)
        raise
    return target


def _item(case: dict[str, Any], indent: int) -> str:
    dumped = yaml.safe_dump(case, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    lines = dumped.rstrip("\n").split("\n")
    pad = " " * indent
    return "".join(f"{pad}{'- ' if i == 0 else '  '}{line}\n" for i, line in enumerate(lines))


def _insert_case(text: str, case: dict[str, Any]) -> str:
    root = yaml.compose(text, Loader=_LOADER)
    cases = None
    if isinstance(root, yaml.MappingNode):
        cases = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "cases"), None)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if cases is None:
        return "".join(lines) + "cases:\n" + _item(case, 2)
    if not isinstance(cases, yaml.SequenceNode):
        raise DatasetError("'cases' is not a list")
    if cases.flow_style or not cases.value:
        start, end = cases.start_mark, cases.end_mark
        existing = yamlpos.load_data(text, max_nodes=None).get("cases") or []
        block = "\n" + "".join(_item(c, 2) for c in [*existing, case])
        flat = "".join(lines)
        return flat[: start.index] + block.rstrip("\n") + flat[end.index :]
    indent = cases.value[0].start_mark.column - 2
    last = cases.value[-1].end_mark
    at = last.line if last.column == 0 else last.line + 1
    while at > 0 and at - 1 < len(lines) and not lines[at - 1].strip():
        at -= 1  # before the blank lines that follow the last case
    return "".join(lines[:at]) + _item(case, max(indent, 0)) + "".join(lines[at:])
