"""A scripted 'model' for eval tests: it answers from the request's content, so cases can run
concurrently and still get their own answers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

CATEGORIES = {"charged": "billing", "invoice": "billing", "refund": "billing", "crash": "bug", "error": "bug"}


def user_text(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in request.get("messages", []) if m.get("role") == "user")


def system_text(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in request.get("messages", []) if m.get("role") == "system")


def triage_answer(request: dict[str, Any]) -> str | None:
    """The triage prompt: v1 ('You triage tickets.') always says billing; a version whose system
    message says 'carefully' reads the ticket. The judge passes outputs that name a category."""
    system = system_text(request)
    if system.startswith("You grade"):
        output = user_text(request).split("<output>")[-1]
        ok = "billing" in output or "bug" in output
        return json.dumps({"pass": ok, "score": 0.9 if ok else 0.1, "reason": "names a category" if ok else "no category"})
    if "triage tickets" not in system:
        return None
    ticket = user_text(request).lower()
    if "carefully" in system:
        category = next((c for word, c in CATEGORIES.items() if word in ticket), "other")
    else:
        category = "billing"
    urgency = "high" if "down" in ticket else "low"
    return json.dumps({"category": category, "urgency": urgency})


def new_version(prompts: Path, old: str = "You triage tickets.", new: str = "You triage tickets carefully.") -> None:
    path = prompts / "triage.yaml"
    path.write_text(path.read_text().replace(old, new))


TRIAGE_EVAL = """\
name: triage
description: Categories of tickets, two versions side by side.
target: {prompt: triage}
versions: [production, latest]
concurrency: 6
assert:
  - {type: field, path: category}
metrics:
  - {type: classification, name: category, path: category}
thresholds:
  pass_rate: 0.8
  metrics: {category.accuracy: 0.8}
cases:
  - {id: charged-twice, vars: {body: I was charged twice this month}, expected: {category: billing}, tags: [billing]}
  - {id: invoice, vars: {body: "Where is my invoice?"}, expected: {category: billing}, tags: [billing]}
  - {id: crash, vars: {body: The app crash on start}, expected: {category: bug}, tags: [bug]}
  - {id: error-500, vars: {body: I get an error 500 when saving}, expected: {category: bug}, tags: [bug]}
  - {id: hello, vars: {body: Just saying hello}, expected: {category: other}}
"""


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
