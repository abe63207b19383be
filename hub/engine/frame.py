"""What a step sees: the outputs so far, the for-each item, the error being handled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.flow.expressions import Scope

NO_ITEM = object()


@dataclass
class Frame:
    outputs: Scope
    suffix: str = ""
    item: Any = NO_ITEM
    index: int | None = None
    error: dict[str, Any] | None = None
    base: dict[str, Any] = field(default_factory=dict)
    _scope: dict[str, Any] | None = None

    def path(self, task_id: str) -> str:
        return task_id + self.suffix

    def iteration(self, index: int, item: Any) -> Frame:
        return Frame(
            outputs=Scope("outputs", {}, "task", parent=self.outputs),
            suffix=f"{self.suffix}[{index}]",
            item=item,
            index=index,
            error=self.error,
            base=self.base,
        )

    def with_error(self, error: dict[str, Any]) -> Frame:
        return Frame(outputs=self.outputs, suffix=self.suffix, error=error, base=self.base)

    def scope(self) -> dict[str, Any]:
        """The names expressions see (built once per frame)."""
        if self._scope is None:
            scope = dict(self.base)
            scope["outputs"] = self.outputs
            if self.item is not NO_ITEM:
                scope["item"] = self.item
                scope["index"] = self.index
            if self.error is not None:
                scope["error"] = self.error
            self._scope = scope
        return self._scope
