"""`python -m uoom_orders_chaos`."""

from __future__ import annotations

import os

# Before gRPC is imported. Its fork handlers (on by default) run in every child this process
# forks, and PostgreSQL is started as another user, which rules out vfork: now and then the
# restarted postmaster died with SIGSEGV (exit -11) before its first log line. Nothing here
# uses gRPC across a fork (children exec at once), so the handlers are turned off; the role
# processes do not inherit this (see cluster.py).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from uoom_orders_chaos.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
