"""moto's DynamoDB, alone, over HTTP: `python -m uoom_orders_devstack.moto_dynamodb -p PORT`.

The same backend as `moto_server` (same package, same protocol, state in memory), served
without what the local stack never asks of it. `moto_server` serves every AWS service: for each
request it finds the service by matching the request against all of them, which lists moto's
modules on disk every time (about 0.5 ms of CPU), and it wraps every answer for browsers
(CORS). A conditional PutItem costs about 2.8 ms of CPU that way and 2.0 ms this way; on this
2-core machine that CPU is what bounds projection, write-back and reconciliation.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType


def _stop(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m uoom_orders_devstack.moto_dynamodb")
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("-p", "--port", type=int, required=True, help="port to bind")
    args = parser.parse_args(argv)
    # Read by moto's settings when imported: nothing here is a browser.
    os.environ.setdefault("MOTO_DISABLE_GLOBAL_CORS", "true")
    os.environ.setdefault("MOTO_PORT", str(args.port))
    from moto.moto_server.werkzeug_app import create_backend_app
    from werkzeug.serving import run_simple

    app = create_backend_app("dynamodb")
    app.debug = False
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
