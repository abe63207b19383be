"""OpenTelemetry for the hub: setup from the environment, the tracing middleware, GenAI spans,
propagation helpers and the trace store behind the viewer. See docs/tracing.md.

    from hub.telemetry.setup import install
    install(engine)

This package's ``__init__`` imports nothing, so that ``hub.telemetry.tables`` can be imported by
the store's migrations without pulling in the SDK.
"""
