"""``python -m uoom_orders_bench``: see ``uoom_orders_bench.cli``."""

from __future__ import annotations

import sys

from uoom_orders_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
