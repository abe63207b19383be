"""The hub's one YAML loader (flow, prompt, eval, dataset and models files): the data, and the
line and column of every key and value.

Flows arrive from anyone holding a key with the ``read`` scope (``POST /v1/flows/validate``), so
the loader is safe for hostile text. Every refusal is a :class:`YamlSyntaxError` with its line:

- plain data only (YAML's safe schema: no Python objects);
- aliases are followed, but all of them together may stand for at most :data:`MAX_ALIAS_NODES`
  nodes and :data:`MAX_ALIAS_CHARS` characters more than the text spells out (a "billion
  laughs" stops after a few thousand nodes of work); an alias inside its own anchor
  (``a: &r [*r]``) is refused;
- at most ``max_nodes`` nodes in all (:data:`MAX_NODES` by default), nested at most
  :data:`MAX_DEPTH` levels;
- a key given twice in one mapping is an error naming both lines (YAML would keep the last one);
- text a database cannot store (a NUL character, a lone UTF-16 surrogate such as ``"\\ud800"``).
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    StreamEndEvent,
)

Path = tuple[str | int, ...]

MAX_NODES = 30_000  # values, keys and list items of one document, aliases counted as what they stand for
MAX_ALIAS_NODES = 10_000  # nodes produced through aliases
MAX_ALIAS_CHARS = 1_000_000  # characters of scalars produced through aliases
MAX_DEPTH = 100  # levels of nesting
MERGE_TAG = "tag:yaml.org,2002:merge"
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Positions:
    """Line/column (1-based) of values and keys, by key path."""

    def __init__(self) -> None:
        self.values: dict[Path, tuple[int, int]] = {}
        self.keys: dict[Path, tuple[int, int]] = {}

    def of(self, path: Path, key: bool = False) -> tuple[int | None, int | None]:
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if key and probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
            table = self.values
        return self.values.get((), (None, None))  # type: ignore[return-value]


def _walk(node: yaml.Node, path: Path, pos: Positions) -> None:
    pos.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            child = (*path, key_node.value)
            pos.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _walk(value_node, child, pos)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), pos)


class YamlSyntaxError(ValueError):
    """A document the loader refuses, with the 1-based line and column of the problem."""

    def __init__(self, message: str, line: int | None, column: int | None):
        super().__init__(message)
        self.line = line
        self.column = column

    def where(self, source: str) -> str:
        """``source:line:column: message`` (what a command prints)."""
        at = f":{self.line}:{self.column or 1}" if self.line is not None else ""
        return f"{source}{at}: {self}"


def _refuse(message: str, mark: Any) -> YamlSyntaxError:
    return YamlSyntaxError(f"invalid YAML: {message}", mark.line + 1, mark.column + 1)


_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when present: ~10x faster


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """The parser's events composed into nodes here (not by libyaml's composer), so that every
    node and every alias is counted as it is read and a document is refused before it grows."""

    def __init__(self, text: str, max_nodes: int | None):
        super().__init__(text)
        self.max_nodes = max_nodes
        self.nodes = 0  # nodes spelled out
        self.alias_nodes = 0
        self.alias_chars = 0
        self.depth = 0
        self.named: dict[str, yaml.Node] = {}
        self.open: set[int] = set()  # collections being composed (an alias to one is recursive)
        self.sizes: dict[int, tuple[int, int]] = {}  # anchored node -> (nodes, characters) it stands for

    def single(self) -> yaml.Node | None:
        self.get_event()  # stream start
        node = None
        if not self.check_event(StreamEndEvent):
            self.get_event()  # document start
            node, _ = self._node(self.get_event())
            self.get_event()  # document end
        if not self.check_event(StreamEndEvent):
            raise _refuse("expected a single document, but found another one", self.get_event().start_mark)
        return node

    def _node(self, event: Any) -> tuple[yaml.Node, tuple[int, int]]:
        """The node ``event`` starts and the (nodes, characters) it stands for, aliases expanded."""
        if isinstance(event, AliasEvent):
            return self._alias(event)
        self.nodes += 1
        if self.max_nodes is not None and self.nodes + self.alias_nodes > self.max_nodes:
            raise _refuse(f"the document has more than {self.max_nodes} values; split it", event.start_mark)
        if isinstance(event, ScalarEvent):
            node, size = self._scalar(event)
        else:
            node, size = self._collection(event)
        if event.anchor is not None:
            self.named[event.anchor] = node  # (a collection's anchor was named at its start)
            self.sizes[id(node)] = size
        return node, size

    def _alias(self, event: Any) -> tuple[yaml.Node, tuple[int, int]]:
        node = self.named.get(event.anchor)
        if node is None:
            raise _refuse(f"the alias *{event.anchor} has no anchor &{event.anchor} before it", event.start_mark)
        if id(node) in self.open:
            raise _refuse(f"the alias *{event.anchor} is inside its own anchor (a value containing itself)",
                          event.start_mark)
        nodes, chars = self.sizes[id(node)]
        self.alias_nodes += nodes
        self.alias_chars += chars
        if self.alias_nodes > MAX_ALIAS_NODES or self.alias_chars > MAX_ALIAS_CHARS:
            raise _refuse(f"aliases expand to more than {MAX_ALIAS_NODES} values or {MAX_ALIAS_CHARS} "
                          "characters; repeat less through anchors", event.start_mark)
        if self.max_nodes is not None and self.nodes + self.alias_nodes > self.max_nodes:
            raise _refuse(f"the document has more than {self.max_nodes} values; split it", event.start_mark)
        return node, (nodes, chars)

    def _scalar(self, event: Any) -> tuple[yaml.Node, tuple[int, int]]:
        value = event.value
        bad = unstorable(value)
        if bad:
            raise _refuse(f"the text holds {bad}, which cannot be stored; remove it", event.start_mark)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolve(yaml.ScalarNode, value, event.implicit)
        return yaml.ScalarNode(tag, value, event.start_mark, event.end_mark, style=event.style), (1, len(value))

    def _collection(self, start: Any) -> tuple[yaml.Node, tuple[int, int]]:
        if len(self.open) >= MAX_DEPTH:
            raise _refuse(f"values are nested more than {MAX_DEPTH} levels deep", start.start_mark)
        mapping = isinstance(start, MappingStartEvent)
        kind = yaml.MappingNode if mapping else yaml.SequenceNode
        tag = start.tag
        if tag is None or tag == "!":
            tag = self.resolve(kind, None, start.implicit)
        node = kind(tag, [], start.start_mark, None, flow_style=start.flow_style)
        self.open.add(id(node))
        if start.anchor is not None:  # named now, so that an alias to it inside it is found recursive
            self.named[start.anchor] = node
        nodes, chars = 1, 0
        keys: dict[tuple[str, str], Any] = {}
        end = MappingEndEvent if mapping else SequenceEndEvent
        items = node.value
        while True:
            event = self.get_event()
            if isinstance(event, end):
                break
            item, size = self._node(event)
            nodes, chars = nodes + size[0], chars + size[1]
            if mapping:
                _unique(item, keys)
                value, size = self._node(self.get_event())
                nodes, chars = nodes + size[0], chars + size[1]
                items.append((item, value))
            else:
                items.append(item)
        node.end_mark = event.end_mark
        self.open.discard(id(node))
        return node, (nodes, chars)


def _unique(key: yaml.Node, seen: dict[tuple[str, str], Any]) -> None:
    if not isinstance(key, yaml.ScalarNode) or key.tag == MERGE_TAG:
        return
    mark: Any = key.start_mark
    first: Any = seen.setdefault((key.tag, key.value), mark)
    if first is not mark:
        raise _refuse(f"the key {key.value!r} is given twice, at line {first.line + 1} and line "
                      f"{mark.line + 1}; keep one", mark)


def _describe(char: str) -> str:
    return "a NUL character (\\0)" if char == "\x00" else f"a lone surrogate (\\u{ord(char):04x})"


def unstorable(text: str) -> str | None:
    """What in ``text`` a database cannot store (a NUL character, a lone surrogate), or None."""
    found = UNSTORABLE.search(text)
    return _describe(found.group()) if found else None


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _compose(text: str, max_nodes: int | None) -> tuple[_Loader, yaml.Node | None]:
    found = UNSTORABLE.search(text)
    if found:
        line, column = _position(text, found.start())
        raise YamlSyntaxError(f"invalid YAML: the text holds {_describe(found.group())}; remove it", line, column)
    loader = _Loader(text, max_nodes)
    try:
        return loader, loader.single()
    except BaseException:
        loader.dispose()
        raise


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a document is read (and a flow built from it).

    Reading makes a tree of nodes, marks and values that all stay alive until the end, and that
    reference counting frees without help (no cycles). Left on, the collector would walk the whole
    growing tree again and again (each full pass when it has grown by a quarter): the cost per
    value grew with the size of the document (x2.5 from 250 to 10,000 steps). The objects are
    collected as usual afterwards, once. (The pause is process-wide, and as long as the read: a
    few milliseconds for a flow of a hundred steps.)"""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _parse(text: str, max_nodes: int | None, positions: bool) -> tuple[Any, Positions]:
    with collector_paused():
        return _parse_all(text, max_nodes, positions)


def _parse_all(text: str, max_nodes: int | None, positions: bool) -> tuple[Any, Positions]:
    try:
        loader, node = _compose(text, max_nodes)
        try:
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
        raise YamlSyntaxError(
            f"invalid YAML: {message}",
            mark.line + 1 if mark else None,
            mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"invalid YAML: {exc}", None, None) from None
    found = Positions()
    if positions and node is not None:
        _walk(node, (), found)
    return data, found


def load(text: str, max_nodes: int | None = MAX_NODES) -> tuple[Any, Positions]:
    """Parse one YAML document, with the position of every key and value. Raises
    :class:`YamlSyntaxError` with the position of the problem. ``max_nodes=None``: no limit on
    the values spelled out (a local dataset file); the alias limits always hold."""
    return _parse(text, max_nodes, True)


def load_data(text: str, max_nodes: int | None = MAX_NODES) -> Any:
    """Parse one YAML document: the data only (same rules and errors as :func:`load`)."""
    return _parse(text, max_nodes, False)[0]
