"""`python -m uoom_orders_devstack`: see `uoom_orders_devstack.cli`."""

from __future__ import annotations

import sys

from uoom_orders_devstack.cli import main

if __name__ == "__main__":
    sys.exit(main())
