"""moto's DynamoDB, alone, over HTTP: `python -m uoom_orders_devstack.moto_dynamodb -p PORT`.

The same backend as `moto_server` (same package, same protocol, state in memory), served
without what the local stack never asks of it, by a server that keeps connections open:

- `moto_server` serves every AWS service: for each request it finds the service by matching the
  request against all of them, which lists moto's modules on disk every time (about 0.5 ms of
  CPU), and it wraps every answer for browsers (CORS). Here only DynamoDB is served.
- `moto_server` runs werkzeug's development server, which closes the connection after every
  answer (so each call costs a TCP connection and a thread on both sides) and logs every
  request. granian (a Rust HTTP server) keeps HTTP/1.1 connections open, as DynamoDB itself
  does, and does its HTTP work outside Python: moto is pure Python and holds the interpreter
  lock for all of a request, so the less of each call runs in Python, the more calls it
  answers. Measured with 16 conditional PutItems in flight from aioboto3 clients, against
  waitress (a pure-Python server that also keeps connections, used here before): the
  endpoint's CPU per call a quarter lower, and 1,180-1,220 calls a second from one client
  instead of 900-910, 1,150 from two instead of 730.

granian serves from a worker process that its first process supervises; both are one process
group, so a signal to the group (pause, kill) reaches the one that serves.

Five of moto's costliest steps are replaced by equivalents (each checked against moto's own
in tests/contract): replies are encoded to JSON directly (moto_replies.py: a BatchGetItem of
100 order items 177 → 23-35 ms of CPU), a condition expression is parsed once per distinct
request instead of twice per call (moto_conditions.py: a conditional PutItem 1.7 → 1.2 ms),
DynamoDB calls reach moto's handler without its Flask app (moto_direct.py: 1.3 → 0.9 ms; it
also keeps moto's per-request listing of the handler's methods, a tenth of a PutItem), and
a PutItem checks the item's size as a running sum, no longer encodes the stored item for a
reply that drops it, sizes its stream record only when it is read and lists the table's key
attributes once (moto_writes.py: the handler's CPU per conditional PutItem 1.25 → 0.96 ms
before the last), and a request's body is parsed by functions built once per operation from
moto's model instead of a walk that looks up a handler at every node (moto_parsing.py). The
last two together: the endpoint's CPU per conditional PutItem of order items about a tenth
lower (0.70 against 0.78 ms, medians of six interleaved rounds of 6,000 puts).

On this 2-core machine the endpoint's CPU is what bounds projection, write-back and
reconciliation; every call the service makes to it also costs the service less with a kept
connection (as it does against DynamoDB).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

# Requests run one at a time anyway (moto holds the interpreter lock throughout); a second
# thread keeps one slow request (a Scan, a BatchGetItem of 100) from holding up the others.
_BLOCKING_THREADS = 2
_STATS_ENV = "UOOM_MOTO_SERVE_STATS"
"""Set by `main` for the worker process: wrap the app in OperationStats."""
_STATS_EVERY_S = 5.0

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class OperationStats:
    """Calls and CPU time per DynamoDB operation (`--stats`): what the endpoint spends its
    CPU on. Each request runs in a thread of its own while it runs, so the thread's CPU time
    over the call is the request's."""

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
        with self._lock:
            cpu = sorted(self.cpu.items(), key=lambda kv: -kv[1])
            calls = dict(self.calls)
        lines = ["operation calls cpu_s cpu_ms_per_call"]
        for operation, spent in cpu:
            lines.append(
                f"{operation} {calls[operation]} {spent:.2f} {spent / calls[operation] * 1000:.2f}"
            )
        return "\n".join(lines)

    def print_while_serving(self, every_s: float = _STATS_EVERY_S) -> None:
        """Prints the report to stderr every `every_s` seconds when calls were made since
        the last one (granian stops its worker without running exit handlers, so the last
        report printed is the final one)."""

        def loop() -> None:
            printed = 0
            while True:
                time.sleep(every_s)
                with self._lock:  # a request may add an operation meanwhile
                    total = sum(self.calls.values())
                if total != printed:
                    printed = total
                    print(self.report(), file=sys.stderr, flush=True)

        threading.Thread(target=loop, name="moto-stats", daemon=True).start()


def app() -> WsgiApp:
    """The WSGI app granian's worker serves (a factory, called once in that process): moto's
    DynamoDB with the replacements installed."""
    from moto.moto_server.werkzeug_app import create_backend_app

    from uoom_orders_devstack import (
        moto_conditions,
        moto_parsing,
        moto_replies,
        moto_transactions,
        moto_writes,
    )
    from uoom_orders_devstack.moto_direct import cache_method_names, direct_app
    from uoom_orders_devstack.moto_heap import freeze_survivors

    moto_replies.install()
    moto_conditions.install()
    moto_writes.install()
    moto_parsing.install()
    moto_transactions.install()
    cache_method_names()  # last: the others add methods to moto's handler
    flask_app = create_backend_app("dynamodb")
    flask_app.debug = False
    served = direct_app(flask_app)
    freeze_survivors()  # full collections walk only what is new (moto_heap.py says why)
    if os.environ.get(_STATS_ENV) != "1":
        return served
    stats = OperationStats(served)
    stats.print_while_serving()
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m uoom_orders_devstack.moto_dynamodb")
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("-p", "--port", type=int, required=True, help="port to bind")
    parser.add_argument(
        "--stats",
        action="store_true",
        help=f"print calls and CPU per operation to stderr (every {_STATS_EVERY_S:.0f} s of use)",
    )
    args = parser.parse_args(argv)
    # Read by moto's settings when the worker imports it: nothing here is a browser.
    os.environ.setdefault("MOTO_DISABLE_GLOBAL_CORS", "true")
    os.environ.setdefault("MOTO_PORT", str(args.port))
    if args.stats:
        os.environ[_STATS_ENV] = "1"
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.log import LogLevels

    Granian(
        "uoom_orders_devstack.moto_dynamodb:app",
        factory=True,
        address=args.host,
        port=args.port,
        interface=Interfaces.WSGI,
        http=HTTPModes.http1,
        websockets=False,
        workers=1,
        blocking_threads=_BLOCKING_THREADS,
        log_level=LogLevels.warning,
    ).serve()


if __name__ == "__main__":
    main()
