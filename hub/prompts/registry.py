"""The prompt registry: files in ``prompts/`` become immutable, numbered versions.

- :meth:`PromptRegistry.sync` stores a file whose content changed as the next version (with its
  content hash and an optional message). The first version of a prompt is also labelled
  ``production`` so a fresh project runs; later versions are promoted on purpose.
- Labels (``production``, ``staging``, any name) point at versions and move; ``latest`` always
  means the newest version. Every move is kept, so a reference can be resolved *as of* a time:
  an execution resolves labels as of its start, and keeps that version when a label moves while
  it runs. The version a step resolved is pinned (execution + step path) for its re-runs.
"""

from __future__ import annotations

import contextvars
import difflib
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from hub.core import keyset
from hub.errors import HubError, NotFound
from hub.prompts.spec import LATEST, PromptFileError, PromptSpec, Reference, parse_prompt, parse_reference
from hub.prompts.tables import PROMPT_LABEL_MOVES as MOVES
from hub.prompts.tables import PROMPT_LABELS as LABELS
from hub.prompts.tables import PROMPT_PINS as PINS
from hub.prompts.tables import PROMPT_VERSIONS as VERSIONS
from hub.store.ensure import ensure_tables

FIRST_LABEL = "production"
SUFFIXES = (".yaml", ".yml")
MAX_VERSION = 2**31 - 1  # the largest integer a database INTEGER column holds (PostgreSQL)


def _number(text: str) -> bool:
    """``text`` is a version number: ASCII digits only (``"³".isdigit()`` is true, but no number)."""
    return text.isascii() and text.isdigit()

_prompts_dir: contextvars.ContextVar[Path | None] = contextvars.ContextVar("hub_prompts_dir", default=None)


def prompts_dir() -> Path:
    """The folder prompt files are read from: :func:`use_prompts_dir`, else ``HUB_PROMPTS_DIR``."""
    chosen = _prompts_dir.get()
    if chosen is not None:
        return chosen
    from hub.settings import HubSettings

    return HubSettings().prompts_dir


@contextmanager
def use_prompts_dir(path: str | Path) -> Iterator[Path]:
    """Read prompt files from ``path`` within the block (flow validation and runs)."""
    token = _prompts_dir.set(Path(path))
    try:
        yield Path(path)
    finally:
        _prompts_dir.reset(token)


# -- files -----------------------------------------------------------------------------------------


def find_file(directory: Path, name: str) -> Path | None:
    for suffix in SUFFIXES:
        candidate = directory / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    for path in prompt_files(directory):
        try:
            if parse_prompt(path.read_text(), str(path)).name == name:
                return path
        except PromptFileError:
            continue
    return None


def prompt_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.suffix in SUFFIXES and p.is_file())


def read_spec(directory: Path, name: str) -> tuple[PromptSpec, str] | None:
    """The prompt file named ``name`` in ``directory`` (spec, source), or None when there is none."""
    path = find_file(directory, name)
    return None if path is None else _read_file(path, name)


def _read_file(path: Path, name: str) -> tuple[PromptSpec, str]:
    source = path.read_text()
    spec = parse_prompt(source, str(path))
    if spec.name != name:
        raise PromptFileError(f"{path}: declares name {spec.name!r}; rename the file or the prompt")
    return spec, source


# -- the registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """A prompt reference resolved to one stored version."""

    reference: str
    name: str
    version: int
    content_hash: str
    spec: PromptSpec

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "hash": self.content_hash, "reference": self.reference}


@dataclass(frozen=True)
class Synced:
    name: str
    version: int
    created: bool
    path: str | None = None


@dataclass(frozen=True)
class LabelBehind:
    """Label ``label`` of prompt ``name`` runs ``version``; ``latest`` is newer and has no label."""

    name: str
    label: str
    version: int
    latest: int
    protected: bool = False  # the label moves only with a passing eval (HUB_PROTECTED_LABELS)

    def __str__(self) -> str:
        promote = f"hub prompts promote {self.name} {self.latest} --label {self.label}"
        if self.protected:
            promote += " --require-eval evals/<file>.yaml (a protected label)"
        return (
            f"prompt {self.name}: {self.label} is version {self.version}; the newer version {self.latest} "
            f"(latest, e.g. an edited file) has no label, so {self.name}@{self.label} runs version "
            f"{self.version}. To run the newer one: {promote}"
        )


class ProtectedLabel(HubError):
    """A protected label moves only with a passing eval comparison, or ``--force --reason``."""


@dataclass(frozen=True)
class Move:
    """Who moves a label and why: the audit of one label move."""

    actor: str | None = None  # "user:<login>" (CLI) or "key:<name>" (API)
    reason: str | None = None
    eval_run: str | None = None  # the passing eval run that justifies it (checked by the caller)
    force: bool = False


class PromptRegistry:
    """Stored prompt versions and labels, fed from the files in ``directory``.

    Labels in ``protected`` (``HUB_PROTECTED_LABELS``, default production, passed by the CLI and
    the API) move only with the passing eval run that justifies it, or forced with a reason; the
    registry records who moved a label, why, and on which eval run."""

    def __init__(self, engine: Engine, directory: str | Path | None = None, protected: frozenset[str] = frozenset()):
        self.engine = engine
        self.directory = Path(directory) if directory is not None else prompts_dir()
        self.protected = protected
        ensure_tables(engine, VERSIONS, LABELS, MOVES, PINS)

    # -- versions ------------------------------------------------------------------------------

    def sync(self, name: str | None = None, message: str | None = None) -> list[Synced]:
        """Store every changed prompt file (or just ``name``) as a new version."""
        if name is not None:
            path = find_file(self.directory, name)
            if path is None:
                return []
            spec, source = _read_file(path, name)
            return [Synced(spec.name, *self.save(spec, source, message, path.stat().st_mtime), path=str(path))]
        out = []
        seen: dict[str, Path] = {}
        for path in prompt_files(self.directory):
            source = path.read_text()
            spec = parse_prompt(source, str(path))
            if spec.name in seen:
                raise PromptFileError(f"{path}: prompt {spec.name!r} is already defined in {seen[spec.name]}")
            seen[spec.name] = path
            out.append(Synced(spec.name, *self.save(spec, source, message, path.stat().st_mtime), path=str(path)))
        return out

    def save(
        self, spec: PromptSpec, source: str, message: str | None = None, edited: float | None = None
    ) -> tuple[int, bool]:
        """Store ``spec`` as the next version unless the newest one has the same content.

        The version dates from when its file was last ``edited`` (when that is earlier than
        now): a file edited before an execution started is ``latest`` as of that start, even
        when a step of the execution is what stores it."""
        content_hash = spec.content_hash()
        for _ in range(3):
            with self.engine.begin() as conn:
                row = conn.execute(
                    select(VERSIONS.c.version, VERSIONS.c.content_hash)
                    .where(VERSIONS.c.name == spec.name)
                    .order_by(VERSIONS.c.version.desc())
                    .limit(1)
                ).first()
                if row is not None and row.content_hash == content_hash:
                    return int(row.version), False
                version = (row.version if row else 0) + 1
                now = time.time()
                since = min(now, edited) if edited is not None else now
                try:
                    conn.execute(
                        insert(VERSIONS).values(
                            name=spec.name,
                            version=version,
                            content_hash=content_hash,
                            spec=spec.model_dump(mode="json", by_alias=True),
                            source=source,
                            message=message,
                            created_at=since,
                        )
                    )
                    if version == 1:
                        self._move(conn, spec.name, FIRST_LABEL, 1, now)
                except IntegrityError:
                    continue  # another process stored a version at the same moment: look again
                return version, True
        raise RuntimeError(f"could not store a new version of prompt {spec.name!r}")

    def names(self) -> list[dict[str, Any]]:
        """Every stored prompt: name, newest version, description, labels."""
        with self.engine.connect() as conn:
            query = select(VERSIONS.c.name, func.max(VERSIONS.c.version)).group_by(VERSIONS.c.name)
            newest: dict[str, int] = {str(n): int(v) for n, v in conn.execute(query)}
            labels: dict[str, dict[str, int]] = {}
            for row in conn.execute(select(LABELS.c.name, LABELS.c.label, LABELS.c.version)):
                labels.setdefault(row.name, {})[row.label] = row.version
        out = []
        for name in sorted(newest):
            spec = self.get(name, newest[name])["spec"]
            out.append(
                {
                    "name": name,
                    "latest": newest[name],
                    "description": spec.get("description"),
                    "tags": spec.get("tags", []),
                    "labels": dict(sorted(labels.get(name, {}).items())),
                }
            )
        return out

    def versions(self, name: str, limit: int | None = None, after: list[Any] | None = None) -> list[dict[str, Any]]:
        """A prompt's versions, oldest first (a page of ``limit`` after the version ``after[0]``)."""
        labels = self.labels(name)
        query = select(VERSIONS.c.version, VERSIONS.c.content_hash, VERSIONS.c.message, VERSIONS.c.created_at) \
            .where(VERSIONS.c.name == name)
        with self.engine.connect() as conn:
            rows = conn.execute(keyset.page(query, ((VERSIONS.c.version, False),), after, limit)).all()
            newest = conn.execute(select(func.max(VERSIONS.c.version)).where(VERSIONS.c.name == name)).scalar()
        if newest is None:
            raise self._no_prompt(name)
        return [
            {
                "version": r.version,
                "hash": r.content_hash,
                "message": r.message,
                "created_at": r.created_at,
                "labels": sorted([lb for lb, v in labels.items() if v == r.version] + ([LATEST] if r.version == newest else [])),
            }
            for r in rows
        ]

    def get(self, name: str, version: int) -> dict[str, Any]:
        row = None
        if 0 < version <= MAX_VERSION:  # (a larger number is no version, and no database integer)
            with self.engine.connect() as conn:
                row = conn.execute(select(VERSIONS).where(VERSIONS.c.name == name, VERSIONS.c.version == version)).first()
        if row is None:
            if not self._exists(name):
                raise self._no_prompt(name)
            raise NotFound(f"prompt {name!r} has no version {version}; see 'hub prompts show {name}'")
        return dict(row._mapping)

    def diff(self, name: str, a: str | int, b: str | int) -> str:
        """A unified diff of two versions' sources (each a version number or a label)."""
        va, vb = self.version_of(name, a), self.version_of(name, b)
        left, right = self.get(name, va)["source"], self.get(name, vb)["source"]
        return "".join(
            difflib.unified_diff(
                left.splitlines(keepends=True), right.splitlines(keepends=True), f"{name}:{va}", f"{name}:{vb}"
            )
        )

    # -- labels --------------------------------------------------------------------------------

    def labels(self, name: str) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(LABELS.c.label, LABELS.c.version).where(LABELS.c.name == name))
            return {r.label: int(r.version) for r in rows}

    def set_label(self, name: str, label: str, version: str | int, move: Move | None = None) -> int | None:
        """Point ``label`` at ``version`` (a number or another label); returns the previous version.
        A protected label needs ``move.eval_run`` or ``move.force`` with a reason (:class:`ProtectedLabel`)."""
        move = move or Move()
        if label == LATEST:
            raise ValueError("'latest' always means the newest version; it cannot be moved")
        target = self.version_of(name, version)
        self.get(name, target)
        self._check_policy(name, label, target, move)
        with self.engine.begin() as conn:
            return self._move(conn, name, label, target, time.time(), move)

    def _check_policy(self, name: str, label: str, target: int, move: Move) -> None:
        if label not in self.protected or move.eval_run:
            return
        if self.labels(name).get(label) == target:
            return  # not a move
        if not move.force:
            raise ProtectedLabel(
                f"'{label}' is a protected label: move it with an eval that backs {name}:{target} "
                f"('hub prompts promote {name} {target} --label {label} --require-eval evals/<file>.yaml'), "
                f"or with --force --reason '...' (audited)"
            )
        if not (move.reason or "").strip():
            raise ProtectedLabel(f"--force on the protected label '{label}' needs --reason: it is recorded in the label history")

    def promote(
        self, name: str, source: str | int = "staging", to: str = FIRST_LABEL, move: Move | None = None,
    ) -> tuple[int, int | None]:
        """Move label ``to`` onto the version ``source`` names; returns (version, previous)."""
        version = self.version_of(name, source)
        return version, self.set_label(name, to, version, move)

    def labels_behind(self, names: Iterable[str] | None = None) -> list[LabelBehind]:
        """Every label that runs an older version while the newest has no label (an edited file is
        ``latest``, not ``production``). ``names``: these prompts (default: every stored one)."""
        with self.engine.connect() as conn:
            query = select(VERSIONS.c.name, func.max(VERSIONS.c.version)).group_by(VERSIONS.c.name)
            newest = {str(n): int(v) for n, v in conn.execute(query)}
            labels: dict[str, dict[str, int]] = {}
            for row in conn.execute(select(LABELS.c.name, LABELS.c.label, LABELS.c.version)):
                labels.setdefault(str(row.name), {})[str(row.label)] = int(row.version)
        out = []
        for name in sorted(set(names) & set(newest) if names is not None else newest):
            latest, pointed = newest[name], labels.get(name, {})
            if latest not in pointed.values():
                out += [LabelBehind(name, label, version, latest, label in self.protected)
                        for label, version in sorted(pointed.items())]
        return out

    def history(self, name: str, limit: int | None = None, after: list[Any] | None = None) -> list[dict[str, Any]]:
        """Every move of the prompt's labels, oldest first (a page after the move ``after[0]``)."""
        query = select(MOVES).where(MOVES.c.name == name)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(keyset.page(query, ((MOVES.c.id, False),), after, limit))]

    def _move(self, conn: Any, name: str, label: str, version: int, now: float, move: Move | None = None) -> int | None:
        row = conn.execute(select(LABELS.c.version).where(LABELS.c.name == name, LABELS.c.label == label)).first()
        previous = int(row.version) if row else None
        if row is None:
            conn.execute(insert(LABELS).values(name=name, label=label, version=version, updated_at=now))
        else:
            conn.execute(
                update(LABELS).where(LABELS.c.name == name, LABELS.c.label == label).values(version=version, updated_at=now)
            )
        move = move or Move(actor="hub", reason="first version of the prompt")
        conn.execute(insert(MOVES).values(
            name=name, label=label, version=version, previous=previous, moved_at=now, actor=move.actor,
            reason=move.reason, eval_run=move.eval_run, forced=move.force,
        ))
        return previous

    def version_of(self, name: str, ref: str | int) -> int:
        """A version number from ``3``, ``"3"``, ``"v3"``, a label or ``latest``."""
        text = str(ref).strip()
        if text.lower().startswith("v") and _number(text[1:]):
            text = text[1:]
        if _number(text):
            return int(text)
        return self._label_version(name, text, None)

    # -- resolution ----------------------------------------------------------------------------

    def resolve(self, reference: str | Reference, as_of: float | None = None, sync: bool = True) -> Resolved:
        """The stored version a reference means (labels as they were at ``as_of``, default now).

        With ``sync`` the prompt's file is stored first when it changed, so an edited file is
        ``latest`` right away (labels do not move by themselves).
        """
        ref = parse_reference(reference) if isinstance(reference, str) else reference
        if sync:
            self.sync(ref.name)
        version = ref.version if ref.version is not None else self._label_version(ref.name, ref.label or LATEST, as_of)
        row = self.get(ref.name, version)
        return Resolved(str(ref), ref.name, version, row["content_hash"], PromptSpec.model_validate(row["spec"]))

    def resolve_for_step(
        self, reference: str, execution_id: str, path: str, as_of: float | None = None
    ) -> Resolved:
        """Resolve once per execution step: a re-run of the step gets the pinned version."""
        with self.engine.connect() as conn:
            pin = conn.execute(select(PINS).where(PINS.c.execution_id == execution_id, PINS.c.path == path)).first()
        if pin is not None and pin.reference == str(reference):
            row = self.get(pin.name, pin.version)
            return Resolved(pin.reference, pin.name, pin.version, pin.content_hash, PromptSpec.model_validate(row["spec"]))
        resolved = self.resolve(reference, as_of=as_of)
        values = dict(
            execution_id=execution_id,
            path=path,
            reference=str(reference),
            name=resolved.name,
            version=resolved.version,
            content_hash=resolved.content_hash,
            created_at=time.time(),
        )
        with self.engine.begin() as conn:
            if pin is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(PINS).values(**values))
                except IntegrityError:
                    pass
            else:  # the step now names another prompt (a changed flow): pin the new one
                conn.execute(
                    update(PINS).where(PINS.c.execution_id == execution_id, PINS.c.path == path).values(**values)
                )
        return resolved

    def pins(self, execution_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(PINS).where(PINS.c.execution_id == execution_id).order_by(PINS.c.id))
            return [dict(r._mapping) for r in rows]

    def _label_version(self, name: str, label: str, as_of: float | None) -> int:
        with self.engine.connect() as conn:
            if label == LATEST:
                query = select(func.max(VERSIONS.c.version)).where(VERSIONS.c.name == name)
                if as_of is not None:
                    then = conn.execute(query.where(VERSIONS.c.created_at <= as_of)).scalar()
                    if then is not None:
                        return int(then)
                newest = conn.execute(query).scalar()
                if newest is None:
                    raise self._no_prompt(name)
                return int(newest)
            if as_of is not None:
                moved = conn.execute(
                    select(MOVES.c.version)
                    .where(MOVES.c.name == name, MOVES.c.label == label, MOVES.c.moved_at <= as_of)
                    .order_by(MOVES.c.moved_at.desc(), MOVES.c.id.desc())
                    .limit(1)
                ).first()
                if moved is not None:
                    return int(moved.version)
            row = conn.execute(select(LABELS.c.version).where(LABELS.c.name == name, LABELS.c.label == label)).first()
        if row is None:
            if not self._exists(name):
                raise self._no_prompt(name)
            raise NotFound(
                f"prompt {name!r} has no label {label!r}; set it with 'hub prompts label {name} <version> {label}'"
            )
        return int(row.version)

    def _exists(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(VERSIONS.c.id).where(VERSIONS.c.name == name).limit(1)).first() is not None

    def _no_prompt(self, name: str) -> NotFound:
        return NotFound(f"there is no prompt {name!r}; add {self.directory / (name + '.yaml')} and run 'hub prompts sync'")
