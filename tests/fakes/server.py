"""Run an ASGI app (a provider fake) on 127.0.0.1 in a background thread.

    with serve(app) as base_url:
        client = SomeSdk(base_url=base_url)

The server listens on a free port chosen by the OS and stops when the block ends.
"""

from hub.testing import serve_app as serve

__all__ = ["serve"]
