"""`python -m uoom_orders_chaos`."""

from __future__ import annotations

from uoom_orders_chaos.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
