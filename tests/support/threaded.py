"""An app of this process served over real HTTP, for tests whose client must talk HTTP to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def in_thread(app: Flask) -> Iterator[str]:
    """An app of this process over real HTTP on a free loopback port (werkzeug, threaded): for
    clients that must talk HTTP to it, such as `spine-cds try --service-url`. Yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(5)
