"""What the event-bus connectors (kafka, nats, amqp, mqtt) share.

:mod:`connectors.bus.consume` is the one consumer loop behind every bus trigger (condition,
idempotency key, batching, dead letters, backpressure, reconnect with backoff); each bus
only says how to connect, fetch, acknowledge and dead-letter (:class:`~connectors.bus.consume.Source`).
:mod:`connectors.bus.publish` is what the publish tasks share (message encoding, the re-run record).
Importing this package is cheap: no bus client library is loaded.
"""
