"""Expressions: Jinja2 in an immutable sandbox with strict undefined.

A string field is rendered once, from the flow's own text. Values that come from outside
(webhook bodies, HTTP responses, LLM output) enter only as data in the scope and are never
rendered again, so a ``{{ ... }}`` inside an email body is text, not code.

A field that is exactly one expression keeps its type: ``"{{ outputs.fetch.body }}"`` is the
dict itself, not its string form.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.environment import TemplateExpression
from jinja2.lexer import describe_token
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from hub.errors import ExpressionError
from hub.flow.lru import Lru
from hub.flow.secrets import redactor_of

_WHOLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
DEFAULT_CACHE_SIZE = 20_000
"""Compiled expressions a process keeps unless ``HUB_EXPRESSION_CACHE_SIZE`` (the same default, in
:class:`hub.settings.HubSettings`) says otherwise; about 3-4 KB each."""


class Compiled(NamedTuple):
    """An expression or template compiled once: the callable, and what it refers to."""

    fn: Callable[[dict[str, Any]], Any]
    free: frozenset[str]  # names it reads from the scope (``outputs``, ``item``, ``now`` ...)
    pairs: frozenset[tuple[str, str]]  # (root, key): ``outputs.fetch`` -> ("outputs", "fetch")


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class Scope:
    """A read-only mapping for expressions: ``outputs.fetch`` finds the key ``fetch`` (never a
    dict method called ``items`` or ``keys``), a miss names the scope (``outputs has no task 'x'``),
    and an optional parent is searched next (a for-each iteration sees the outer outputs)."""

    __slots__ = ("_data", "_parent", "label", "noun")

    def __init__(
        self, label: str, data: dict[str, Any] | None = None, noun: str = "key", parent: Scope | None = None
    ):
        self._data = data if data is not None else {}
        self._parent = parent
        self.label = label
        self.noun = noun

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> Any:
        if key in self._data:
            return self._data[key]
        if self._parent is not None:
            return self._parent[key]
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._data or (self._parent is not None and key in self._parent)

    def __iter__(self) -> Any:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def keys(self) -> list[str]:
        out = list(self._parent.keys()) if self._parent is not None else []
        return out + [k for k in self._data if k not in out]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def own(self) -> dict[str, Any]:
        return self._data

    def to_dict(self) -> dict[str, Any]:
        return {k: self[k] for k in self.keys()}

    def __repr__(self) -> str:
        return f"Scope({self.label}, {self.to_dict()!r})"


class _Undefined(StrictUndefined):
    @property
    def _undefined_message(self) -> str:  # type: ignore[override]
        obj = self._undefined_obj
        name = self._undefined_name
        if isinstance(obj, Scope):
            known = ", ".join(sorted(map(str, obj))) or "none"
            return f"{obj.label} has no {obj.noun} {name!r} (known: {known})"
        return str(super()._undefined_message)


# -- filters -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, Scope) else str(value)


def _to_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, default=_plain, ensure_ascii=False)


def _from_json(value: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError) as exc:
        raise ExpressionError(f"from_json: not valid JSON: {exc}") from None


def _domain(value: str) -> str:
    text = str(value).strip()
    if "@" in text:
        return text.rsplit("@", 1)[1].lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text, flags=re.I)
    return text.split("/", 1)[0].split(":", 1)[0].lower()


def _slug(value: str, sep: str = "-") -> str:
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", sep, text.lower()).strip(sep)


def _b64encode(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return base64.b64encode(data).decode()


def _b64decode(value: str) -> str:
    return base64.b64decode(value).decode()


def _sha256(value: Any) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


def _date(value: Any, fmt: str = "%Y-%m-%d") -> str:
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return str(value.strftime(fmt))


def _pluck(items: Iterable[Any], key: str) -> list[Any]:
    return [item.get(key) if isinstance(item, dict) else getattr(item, key, None) for item in items]


def _now() -> str:
    return datetime.now(UTC).isoformat()


FILTERS: dict[str, Callable[..., Any]] = {
    "json": _to_json,
    "tojson": _to_json,
    "from_json": _from_json,
    "domain": _domain,
    "slug": _slug,
    "b64encode": _b64encode,
    "b64decode": _b64decode,
    "sha256": _sha256,
    "date": _date,
    "pluck": _pluck,
}


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with :class:`Scope` attribute access resolved to keys only, and a mapping's
    keys before its methods: ``body.keys`` is the entry ``keys`` when the data has one (Jinja's
    default would give the dict's ``keys`` method), ``body.keys()`` still calls the method."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Scope):
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


class Expressions:
    """Compiles and renders templates. Compiled forms are kept in a bounded LRU keyed by source
    text (:class:`~hub.flow.lru.Lru`, ``HUB_EXPRESSION_CACHE_SIZE`` entries): the flow loader
    compiles each expression once, while checking it, and every render after finds it there."""

    def __init__(self, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        env = _Environment(undefined=_Undefined, autoescape=False, keep_trailing_newline=True)
        env.filters.update(FILTERS)
        env.globals["now"] = _now  # (the sandbox's own ``range`` refuses more than 100,000 items)
        self.env = env
        self.cache: Lru[str, Compiled] = Lru(cache_size)
        self.compilations = 0  # sources compiled by this engine (a cache miss each)

    # -- compile -------------------------------------------------------------------------------

    def compile(self, source: str) -> Callable[[dict[str, Any]], Any]:
        """A callable scope -> value. Raises ``TemplateSyntaxError`` for bad syntax (or an unknown
        filter or test)."""
        return self.compiled(source).fn

    def compiled(self, source: str) -> Compiled:
        """``source`` compiled, with the names it uses: from the cache, or compiled now and kept."""
        found = self.cache.get(source)
        if found is None:
            found = self._compile(source)
            self.cache.put(source, found)
        return found

    def _compile(self, source: str) -> Compiled:
        """One parse and one code generation. A field that is exactly one expression becomes a
        Jinja expression (it keeps its type); anything else a template rendered to text. The
        names are read from the tree before the compiler's optimizer folds constants into it."""
        self.compilations += 1
        whole = _WHOLE.match(source)
        if whole and "{{" not in whole["expr"] and "{%" not in source:
            expr = self._parse_expression(whole["expr"])
            free = {node.name for node in _nodes(expr, nodes.Name) if node.ctx == "load"}
            pairs = _pairs(expr, free)
            body = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
            template = self.env.from_string(nodes.Template(body, lineno=1))
            fn: Callable[[dict[str, Any]], Any] = TemplateExpression(template, undefined_to_none=False)
        else:
            ast = self.env.parse(source)
            free = set(meta.find_undeclared_variables(ast))
            pairs = _pairs(ast, free)
            fn = self.env.from_string(ast).render
        return Compiled(fn, frozenset(free), frozenset(pairs))

    def _parse_expression(self, text: str) -> nodes.Expr:
        parser = Parser(self.env, text, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:  # what the template parser says of ``{{ a b }}``
            parser.fail(f"expected token 'end of print statement', got {describe_token(parser.stream.current)!r}")
        expr.set_environment(self.env)
        return expr

    def compile_condition(self, source: str) -> Callable[[dict[str, Any]], Any]:
        text = source if is_template(source) else "{{ " + source + " }}"
        return self.compile(text)

    # -- render --------------------------------------------------------------------------------

    def render(self, value: Any, scope: dict[str, Any], where: str | None = None) -> Any:
        """Render every template string in ``value`` (recursively through dicts and lists)."""
        if isinstance(value, str):
            if "{{" not in value and "{%" not in value:
                return value
            return self._render_one(value, scope, where)
        if isinstance(value, dict):
            return {k: self.render(v, scope, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, scope, f"{where}[{i}]" if where else f"[{i}]") for i, v in enumerate(value)]
        return value

    def condition(self, source: str | bool, scope: dict[str, Any], where: str | None = None) -> bool:
        if isinstance(source, bool):
            return source
        return truthy(self._evaluate(self.compile_condition, source, scope, where))

    def _render_one(self, source: str, scope: dict[str, Any], where: str | None) -> Any:
        redactor = redactor_of(scope)
        if redactor is None:
            return self._evaluate(self.compile, source, scope, where)
        before = redactor.reads
        result = self._evaluate(self.compile, source, scope, where)
        if redactor.reads != before:  # made from a secret: never stored, logged or traced, whole
            redactor.add_rendered(result)
        return result

    @staticmethod
    def _evaluate(
        compiler: Callable[[str], Callable[[dict[str, Any]], Any]], source: str, scope: dict[str, Any],
        where: str | None,
    ) -> Any:
        """``source`` compiled by ``compiler`` and run on ``scope``; every failure an ExpressionError."""
        try:
            result = compiler(source)(scope)
        except Exception as exc:
            raise Expressions._error(exc, source, where) from None
        if isinstance(result, StrictUndefined):
            raise ExpressionError(result._undefined_message, source, where)
        return result

    @staticmethod
    def _error(exc: Exception, source: str, where: str | None) -> ExpressionError:
        if isinstance(exc, ExpressionError):
            return ExpressionError(str(exc), source, where)
        if isinstance(exc, UndefinedError):
            return ExpressionError(exc.message or "undefined value", source, where)
        if isinstance(exc, SecurityError):
            return ExpressionError(f"not allowed in an expression: {exc}", source, where)
        if isinstance(exc, TemplateSyntaxError):
            return ExpressionError(f"syntax error: {exc.message}", source, where)
        if isinstance(exc, TemplateError):
            return ExpressionError(str(exc), source, where)
        return ExpressionError(f"{type(exc).__name__}: {exc}", source, where)

    # -- static analysis -------------------------------------------------------------------------

    def references(self, source: str) -> tuple[set[str], set[tuple[str, str]]]:
        """Free names a template uses, and ``(root, key)`` pairs such as ``("outputs", "fetch")``.
        Compiles ``source`` (once: a render later finds it in the cache).

        Raises ``TemplateSyntaxError`` (a syntax error, or an unknown filter) for a bad template.
        """
        found = self.compiled(source)
        return set(found.free), set(found.pairs)


def _nodes(tree: nodes.Node, kinds: Any) -> list[Any]:
    """The nodes of ``tree`` of the types ``kinds``, ``tree`` itself included (find_all leaves it out)."""
    return [tree, *tree.find_all(kinds)] if isinstance(tree, kinds) else list(tree.find_all(kinds))


def _pairs(tree: nodes.Node, free: set[str]) -> set[tuple[str, str]]:
    """``(root, key)`` for each ``root.key`` or ``root["key"]`` in ``tree`` whose root is a free name."""
    pairs: set[tuple[str, str]] = set()
    for node in _nodes(tree, (nodes.Getattr, nodes.Getitem)):
        base = getattr(node, "node", None)
        if not isinstance(base, nodes.Name) or base.name not in free:
            continue
        if isinstance(node, nodes.Getattr):
            pairs.add((base.name, node.attr))
        else:
            arg = getattr(node, "arg", None)
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                pairs.add((base.name, arg.value))
    return pairs


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "none", "null")
    return bool(value)


_DEFAULT: Expressions | None = None


def expressions() -> Expressions:
    """The process-wide expression engine."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Expressions()
    return _DEFAULT
