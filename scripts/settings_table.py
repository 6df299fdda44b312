"""Writes the README's table of settings from their declarations (server/uoom_orders/config)."""

from __future__ import annotations

from pathlib import Path

from uoom_orders.config.table import replace_table

README = Path(__file__).resolve().parent.parent / "README.md"

if __name__ == "__main__":
    README.write_text(replace_table(README.read_text()))
    print(f"settings table written to {README.name}")
