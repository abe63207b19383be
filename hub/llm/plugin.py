"""Built-in plugin: LLM steps and versioned prompts."""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    hub.task_kind("llm.chat", "hub.llm.chat:Chat")
    hub.task_kind("langchain.invoke", "hub.llm.invoke:LangchainInvoke")
    hub.service("llm", "hub.llm:install")  # the model client; litellm imported at start-up when needed
    hub.tables("hub.llm.tables")
    hub.tables("hub.prompts.tables")
    hub.migrations("hub.llm:migrations")  # both modules' tables
    hub.router("hub.api.prompts:router")
    hub.command("prompts", "hub.prompts.cli:prompts")
    hub.settings("llm", "hub.llm.settings:LLMSettings")
