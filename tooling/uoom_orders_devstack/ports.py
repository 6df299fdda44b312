"""Loopback ports for the local stack's servers."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Mapping

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """Returns a port that was free a moment ago.

    The port is closed again before the server binds it, so another process may take it in
    between; the launcher retries a failed start once on a new port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(
    port: int,
    method: str = "GET",
    path: str = "/",
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    host: str = LOOPBACK,
    timeout: float = 1.0,
) -> int | None:
    """The status of one HTTP request to host:port, or None when nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
