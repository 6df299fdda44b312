"""`python -m uoom_orders_devstack.servers`: the local stack's servers alone (no service) until
interrupted, printing their env."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path

from uoom_orders_devstack.stack import LocalStack


def main(argv: list[str] | None = None) -> int:
    """Starts the stack, prints `export NAME=value` lines, and stops on SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_devstack.servers", description=__doc__
    )
    parser.add_argument("--base-dir", type=Path, help="folder for data and logs (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the base folder on stop")
    args = parser.parse_args(argv)

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with LocalStack(args.base_dir, keep_base_dir=args.keep) as stack:
        for name, value in stack.endpoints.env().items():
            print(f"export {name}={shlex.quote(value)}")
        seconds = ", ".join(f"{name} {s:.2f} s" for name, s in stack.start_seconds.items())
        print(f"# started in {seconds}; logs in {stack.base_dir}", file=sys.stderr)
        print("# Ctrl-C stops the stack", file=sys.stderr, flush=True)
        stopping.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
