"""The Prometheus endpoint: text format on its own port, in prometheus-client's own thread."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import prometheus_client

_log = logging.getLogger(__name__)


@contextlib.contextmanager
def metrics_endpoint(port: int) -> Iterator[None]:
    """Serves /metrics on `port` for the block; closes the socket and joins the thread after."""
    server, thread = prometheus_client.start_http_server(port)
    _log.info("metrics on http://0.0.0.0:%d/metrics", port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
