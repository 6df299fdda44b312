"""An item's size as DynamoDB counts it for capacity and storage (its published rules).

Attribute names count at every level; a string is its UTF-8 bytes; a number about one byte per
two significant digits plus one; binary its bytes; a boolean or null one byte; a list or map
three bytes plus one per element plus its elements. Approximate for numbers (DynamoDB's exact
encoding is not published), exact enough to tell which kilobyte an item falls in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
STORAGE_OVERHEAD_BYTES = 100
"""DynamoDB adds this much per item, and per index entry, to the storage it bills."""


def _number_size(text: str) -> int:
    digits = text.lstrip("+-").replace(".", "").lstrip("0").rstrip("0")
    if "e" in digits.lower():  # an exponent form: its mantissa's digits
        digits = digits.lower().split("e", 1)[0]
    return max(1, math.ceil(len(digits) / 2)) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """The size of one attribute value in DynamoDB's low-level form ({"S": ...}, ...)."""
    (kind, content), *_ = value.items()
    if kind == "S":
        return len(str(content).encode("utf-8"))
    if kind == "N":
        return _number_size(str(content))
    if kind == "B":
        return len(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in content)
    if kind == "M":
        return 3 + sum(
            1 + len(name.encode("utf-8")) + value_size(element) for name, element in content.items()
        )
    if kind == "SS":
        return sum(len(str(s).encode("utf-8")) for s in content)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in content)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """The item's size in bytes: every attribute's name and value."""
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """Write request units of one standard write of an item of `size` bytes."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, *, consistent: bool) -> float:
    """Read request units of reading `size` bytes (eventually consistent: half)."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2
