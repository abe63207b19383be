"""Model calls: the client (:mod:`hub.llm.client`), its settings, transports and call records."""

from __future__ import annotations

from typing import Any


def install(engine: Any) -> Any:
    """The ``llm`` service of a process: the model client, built now only when litellm is to be
    imported at start-up (``hub serve`` with an alias that needs it). Otherwise None: the first
    step that calls a model builds the very same client (:func:`hub.llm.client.default_client`
    from the process's settings), so a worker whose flows call no model never imports the client,
    its transports and their propagators."""
    from hub.llm.settings import LLMSettings

    if engine.settings.section(LLMSettings).preload is False:
        return None
    from hub.llm.client import install as build

    return build(engine)
