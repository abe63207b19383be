"""File templates for ``email.send``: ``<templates_dir>/<name>.subject.txt``, ``<name>.txt``
and ``<name>.html`` (any of them; at least one body). Jinja2 in a sandbox with strict undefined,
HTML autoescaped, the hub's filters available, ``{% extends %}`` / ``{% include %}`` within the
folder. A template sees the step's ``vars`` as names (and as ``vars``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hub.core.errors import TaskError
from hub.core.host import EXPRESSIONS, lookup

SUFFIXES = {"subject": ".subject.txt", "text": ".txt", "html": ".html"}


@lru_cache(maxsize=16)
def _environment(folder: str) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(folder),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "htm"], default_for_string=False, default=False),
        keep_trailing_newline=False,
        auto_reload=True,
    )
    env.filters.update(lookup(EXPRESSIONS).filters)
    return env


def render_template(name: str, variables: dict[str, Any], folder: Path) -> dict[str, str]:
    """Render the parts of template ``name`` found in ``folder``: ``{"subject"?, "text"?, "html"?}``."""
    if ".." in Path(name).parts or Path(name).is_absolute():
        raise TaskError(f"template name {name!r} may not leave the templates folder", retryable=False)
    if not folder.is_dir():
        raise TaskError(
            f"email template {name!r}: templates folder {folder} does not exist; "
            "create it or set HUB_EMAIL_TEMPLATES_DIR",
            retryable=False,
        )
    env = _environment(str(folder.resolve()))
    scope = {**variables, "vars": variables}
    parts: dict[str, str] = {}
    for part, suffix in SUFFIXES.items():
        file = name + suffix
        try:
            rendered = env.get_template(file).render(scope)
        except TemplateNotFound as exc:
            if exc.name == file:
                continue
            raise TaskError(f"email template {file}: {exc.message}", retryable=False) from None
        except TemplateError as exc:  # a syntax error as well as a render error: fix the template
            where = f" line {exc.lineno}" if isinstance(exc, TemplateSyntaxError) else ""
            raise TaskError(f"email template {file}{where}: {exc}", retryable=False) from None
        parts[part] = rendered.strip() if part == "subject" else rendered
    if "text" not in parts and "html" not in parts:
        raise TaskError(
            f"email template {name!r} not found: expected {name}.txt and/or {name}.html "
            f"(and optionally {name}.subject.txt) in {folder}",
            retryable=False,
        )
    return parts
