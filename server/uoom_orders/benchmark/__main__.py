"""``python -m uoom_orders.benchmark``: see ``uoom_orders.benchmark.cli``."""

from __future__ import annotations

import sys

from uoom_orders.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
