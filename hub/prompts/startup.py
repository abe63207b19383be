"""What ``hub run`` and ``hub serve`` say about prompts when they start.

Editing a prompt file makes a new version that is ``latest``, not ``production``: a flow asking for
``name@production`` keeps running the older one. Said once at start-up, so that nobody edits a
prompt, runs the flow and wonders why nothing changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.prompts.registry import PromptRegistry
from hub.prompts.spec import PromptFileError, parse_reference

CHAT = "llm.chat"


def flow_prompts(flow: Any) -> dict[str, set[str]]:
    """The prompts the flow's ``llm.chat`` steps name by label: prompt name -> labels (steps whose
    reference is a template, or names a version, are left out)."""
    out: dict[str, set[str]] = {}
    for task in flow.all_tasks():
        reference = task.params.get("prompt") if task.type == CHAT else None
        if not isinstance(reference, str) or "{{" in reference:
            continue
        try:
            ref = parse_reference(reference)
        except ValueError:
            continue
        if ref.label is not None:
            out.setdefault(ref.name, set()).add(ref.label)
    return out


def label_notes(db: Any, settings: Any, wanted: dict[str, set[str]] | None = None) -> list[str]:
    """The prompt files in the prompts folder (``settings.prompts_dir``) stored (a changed file is a
    new version), then one line per label that runs an older version than an unlabelled newer one.
    ``wanted``: only these prompts and labels (default: all). A prompt file that does not parse is a
    line too (not fatal here)."""
    directory: Path = settings.prompts_dir
    registry = PromptRegistry(db, directory, protected=settings.protected())
    try:
        if wanted is None:
            registry.sync()
        else:
            for name in wanted:
                registry.sync(name)
    except PromptFileError as exc:
        return [f"prompt files in {directory} not read: {exc}"]
    behind = registry.labels_behind(wanted)
    return [str(b) for b in behind if wanted is None or b.label in wanted[b.name]]
