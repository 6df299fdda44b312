"""moto's DynamoDB, alone, over HTTP: `python -m uoom_orders_devstack.moto_dynamodb -p PORT`.

The same backend as `moto_server` (same package, same protocol, state in memory), served
without what the local stack never asks of it, by a server that keeps connections open:

- `moto_server` serves every AWS service: for each request it finds the service by matching the
  request against all of them, which lists moto's modules on disk every time (about 0.5 ms of
  CPU), and it wraps every answer for browsers (CORS). Here only DynamoDB is served.
- `moto_server` runs werkzeug's development server, which closes the connection after every
  answer (so each call costs a TCP connection and a thread on both sides) and logs every
  request. waitress keeps HTTP/1.1 connections open, as DynamoDB itself does, and serves them
  from a few threads. Measured with 16 conditional PutItems in flight from one aioboto3 client,
  four runs each way, interleaved: a fifth less CPU per call in the endpoint (3.3-3.5 → 2.6-2.7
  ms) and in the client (2.2-2.3 → 1.7-1.8 ms), and 30 % more calls a second.

Four of moto's costliest steps are replaced by equivalents (each checked against moto's own
in tests/contract): replies are encoded to JSON directly (moto_replies.py: a BatchGetItem of
100 order items 177 → 23-35 ms of CPU), a condition expression is parsed once per distinct
request instead of twice per call (moto_conditions.py: a conditional PutItem 1.7 → 1.2 ms),
DynamoDB calls reach moto's handler without its Flask app (moto_direct.py: 1.3 → 0.9 ms), and
a PutItem checks the item's size as a running sum, no longer encodes the stored item for a
reply that drops it and sizes its stream record only when it is read (moto_writes.py: the
handler's CPU per conditional PutItem 1.25 → 0.96 ms).

On this 2-core machine the endpoint's CPU is what bounds projection, write-back and
reconciliation; every call the service makes to it also costs the service less with a kept
connection (as it does against DynamoDB).
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

# Requests run one at a time anyway (moto is pure Python); a few threads keep one slow request
# from holding up the others.
_THREADS = 4

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class OperationStats:
    """Calls and CPU time per DynamoDB operation (`--stats`): what the endpoint spends its
    CPU on, printed when it stops. Each request runs in a thread of its own, so the thread's
    CPU time is the request's."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()
        self.cpu: collections.defaultdict[str, float] = collections.defaultdict(float)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        operation = str(environ.get("HTTP_X_AMZ_TARGET", "?")).rpartition(".")[2]
        started = time.thread_time()
        body = list(self._app(environ, start_response))
        spent = time.thread_time() - started
        with self._lock:
            self.calls[operation] += 1
            self.cpu[operation] += spent
        return body

    def report(self) -> str:
        lines = ["operation calls cpu_s cpu_ms_per_call"]
        for operation, cpu in sorted(self.cpu.items(), key=lambda kv: -kv[1]):
            calls = self.calls[operation]
            lines.append(f"{operation} {calls} {cpu:.2f} {cpu / calls * 1000:.2f}")
        return "\n".join(lines)


def _stop(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m uoom_orders_devstack.moto_dynamodb")
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("-p", "--port", type=int, required=True, help="port to bind")
    parser.add_argument(
        "--stats", action="store_true", help="print calls and CPU per operation when stopped"
    )
    args = parser.parse_args(argv)
    # Read by moto's settings when imported: nothing here is a browser.
    os.environ.setdefault("MOTO_DISABLE_GLOBAL_CORS", "true")
    os.environ.setdefault("MOTO_PORT", str(args.port))
    from moto.moto_server.werkzeug_app import create_backend_app

    from uoom_orders_devstack import moto_conditions, moto_replies, moto_writes
    from uoom_orders_devstack.moto_direct import direct_app

    moto_replies.install()
    moto_conditions.install()
    moto_writes.install()
    flask_app = create_backend_app("dynamodb")
    flask_app.debug = False
    app = direct_app(flask_app)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if not args.stats:
        _serve(app, args.host, args.port)
        return
    stats = OperationStats(app)
    try:
        _serve(stats, args.host, args.port)
    finally:
        print(stats.report(), file=sys.stderr, flush=True)


def _serve(app: WsgiApp, host: str, port: int) -> None:
    import waitress

    # Queued requests are normal under load here, not worth a warning each time.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    waitress.serve(
        app,
        host=host,
        port=port,
        threads=_THREADS,
        # Every process of the local stack keeps a pool of connections (up to 64 each).
        connection_limit=2000,
        asyncore_use_poll=True,
        _quiet=True,
    )


if __name__ == "__main__":
    main()
