"""Serving the WSGI app with waitress: in the foreground (``hub serve``) or in a thread that
stops cleanly (browser tests, the API benchmark), with the same server options.

waitress's own ``server.run()`` loops until its socket map is empty; closing the map from
another thread while that loop sits in ``select`` makes it fail on a closed descriptor. The
thread here polls in short steps and checks a stop flag between them, and the sockets are
closed only after the loop has ended.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import waitress
from waitress import wasyncore

from hub.settings import Settings

SERVER_THREADS = 8
# Open connections waitress keeps (its default is 100): a reader's browser holds one or two
# keep-alive connections, and at 200 readers the default queued new ones for tens of seconds
# (bench.dashboard_load: page load p95 34 s). Connections waiting cost a socket, not a thread.
CONNECTION_LIMIT = 1000
POLL_SECONDS = 0.05  # how long a stop can wait for the loop to notice it


def server_options(max_body_bytes: int) -> dict[str, Any]:
    """waitress options of every hub server: worker threads, open connections and a body limit
    (waitress buffers a body before the app sees it: refuse anything over the hub's limit)."""
    return {
        "threads": SERVER_THREADS,
        "connection_limit": CONNECTION_LIMIT,
        "max_request_body_size": max_body_bytes,
    }


@contextmanager
def serve_in_thread(
    wsgi_app: Any, *, max_body_bytes: int | None = None, host: str = "127.0.0.1"
) -> Iterator[str]:
    """Serve ``wsgi_app`` on ``host`` on a free port from a background thread; yield its base URL.

    ``max_body_bytes`` defaults to the settings' default upload limit."""
    if max_body_bytes is None:
        max_body_bytes = int(Settings.model_fields["max_upload_bytes"].default)
    server: Any = waitress.create_server(wsgi_app, host=host, port=0, **server_options(max_body_bytes))
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            wasyncore.loop(timeout=POLL_SECONDS, map=server._map, use_poll=True, count=1)

    thread = threading.Thread(target=loop, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.effective_port}"
    finally:
        stop.set()
        thread.join(timeout=10)
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)
