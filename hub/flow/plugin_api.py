"""The flow language's expressions as plugins see them (:class:`hub.core.host.Expressions`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.core.host import EXPRESSIONS, provide
from hub.flow.expressions import FILTERS, Scope, expressions, truthy


class PluginExpressions:
    filters: Mapping[str, Callable[..., Any]] = FILTERS

    def compile_condition(self, source: str) -> Callable[[dict[str, Any]], Any]:
        return expressions().compile_condition(source)

    def render(self, value: Any, scope: dict[str, Any], where: str | None = None) -> Any:
        return expressions().render(value, scope, where)

    def truthy(self, value: Any) -> bool:
        return truthy(value)

    def scope(self, name: str, data: Mapping[str, Any], noun: str = "key") -> Any:
        return Scope(name, data if isinstance(data, dict) else dict(data), noun=noun)


provide(EXPRESSIONS, PluginExpressions())
