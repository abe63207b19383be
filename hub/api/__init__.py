"""The hub's HTTP API (FastAPI), versioned under ``/v1``. Build the app with :func:`hub.api.app.create_app`."""
