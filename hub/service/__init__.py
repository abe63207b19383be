"""The hub as a service: API server, workers, queue backends."""
