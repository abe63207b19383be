"""Services reach a task typed, by key: ``ctx.service(KEY)`` reads what the process (or the
parent step) put under the key's name, and ``lending`` gives a child more without touching the
parent's context."""

from __future__ import annotations

from typing import Any

from hub.core.registry import TASK_REGISTRY
from hub.core.tasks import RESOURCES, ServiceKey, StepResources, TaskContext
from hub.llm.services import LLM_CLIENT, ONLINE_SCORING, PROMPTS


def context(**services: Any) -> TaskContext:
    return TaskContext(execution_id="e1", namespace="ns", flow_id="f", task_id="t", path="t", attempt=1,
                       settings=None, services=services)  # type: ignore[arg-type]


def test_a_service_is_found_by_its_key_and_a_missing_one_is_none() -> None:
    marker = object()
    ctx = context(llm=marker)
    assert ctx.service(LLM_CLIENT) is marker
    assert ctx.service(PROMPTS) is None and ctx.service(TASK_REGISTRY) is None


def test_lending_adds_a_service_for_a_child_and_leaves_the_parent_alone() -> None:
    parent = context(llm="client")
    resources = StepResources()
    child = parent.lending(RESOURCES, resources)
    assert child.service(RESOURCES) is resources and child.service(LLM_CLIENT) == "client"
    assert parent.service(RESOURCES) is None and "resources" not in parent.services


def test_the_keys_of_process_services_name_what_the_plugins_install() -> None:
    """Plugins register services by name (their modules stay light); a key that drifted from that
    name would read None in every task."""
    from hub.approvals import APPROVALS
    from hub.core.plugins import default_plugins

    plugins = default_plugins()
    for key in (LLM_CLIENT, ONLINE_SCORING, APPROVALS):
        assert plugins.find("service", key.name) is not None, key
    assert plugins.find("service", ServiceKey("nobody").name) is None
