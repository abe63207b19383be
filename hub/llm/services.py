"""The services of the LLM feature a task finds through its context (``ctx.service(KEY)``), typed.

Kept apart from the client and ``llm.chat`` so that naming a key imports nothing heavy: the eval
runner and the online scorer put services under these keys; ``llm.chat`` reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from hub.core.tasks import ServiceKey

if TYPE_CHECKING:
    from hub.core.tasks import TaskContext
    from hub.llm.client import LLMClient
    from hub.prompts.registry import Resolved


class StepPrompts(Protocol):
    """Where ``llm.chat`` resolves a stored prompt: the registry, or an eval's pinned version."""

    def resolve_for_step(self, reference: str, execution_id: str, path: str, as_of: float | None = None) -> Resolved: ...


class CallScorer(Protocol):
    """Takes a production call for online scoring; returns at once and never fails the step."""

    def offer(self, ctx: TaskContext, resolved: Resolved, values: dict[str, Any], out: dict[str, Any],
              call_id: int | None) -> None: ...


LLM_CLIENT: ServiceKey[LLMClient] = ServiceKey("llm")
"""The process's model client; a task without one builds the default from the settings."""
PROMPTS: ServiceKey[StepPrompts] = ServiceKey("prompts")
"""Where ``llm.chat`` resolves stored prompts; the registry on the store when not set."""
ONLINE_SCORING: ServiceKey[CallScorer] = ServiceKey("online_scoring")
"""The online scorer of production calls (the evals feature installs it)."""
