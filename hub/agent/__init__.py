"""``llm.agent``: a model that acts through tools, every tool call a durable child step.

A built-in plugin (:mod:`hub.agent.plugin`): :mod:`hub.agent.spec` is what a flow writes,
:mod:`hub.agent.journal` the child steps that make a run resumable, :mod:`hub.agent.tools` how
one tool call runs (a task kind, guarded by approval), :mod:`hub.agent.task` the loop.
"""
