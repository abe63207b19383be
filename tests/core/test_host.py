"""hub.core.host: what the hub lends plugins, found by interface, with a clear error when absent."""

from __future__ import annotations

import pytest

from hub.core.errors import HubError
from hub.core.host import EXPRESSIONS, FUNCTIONS, Interface, lookup, provide


def test_the_flow_language_provides_expressions_on_first_lookup() -> None:
    language = lookup(EXPRESSIONS)
    rule = language.compile_condition("row.total > 10")
    assert language.truthy(rule({"row": language.scope("row", {"total": 12}, noun="column")}))
    from hub.flow.expressions import FILTERS

    assert dict(language.filters) == FILTERS  # the email templates render with the flows' own filters


def test_user_functions_follow_the_module_policy() -> None:
    class Settings:
        python_modules = "json"

    assert lookup(FUNCTIONS)("json:dumps", Settings())([1]) == "[1]"  # type: ignore[arg-type]
    with pytest.raises(HubError, match="os"):
        lookup(FUNCTIONS)("os:system", Settings())  # type: ignore[arg-type]


def test_an_interface_nobody_provides_is_a_clear_error() -> None:
    missing: Interface[object] = Interface("telepathy", "hub.core.errors")  # a module that provides nothing
    with pytest.raises(HubError, match="this process provides no telepathy"):
        lookup(missing)
    provide(missing, "yes")
    assert lookup(missing) == "yes"
