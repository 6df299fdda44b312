"""Input rules, and a collector that turns broken rules into field violations."""

from __future__ import annotations

import math
import re
from datetime import datetime
from uuid import UUID

from uoom_orders.domain.errors import FieldViolation, InvalidInput

MAX_ITEMS = 100
MAX_QUANTITY = 1000
MAX_UNIT_PRICE_MINOR = 10_000_000  # 100,000.00 in a two-decimal currency
MAX_BATCH_IDS = 100
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
DEFAULT_CHANNEL = "default-channel"

_CHANNEL = re.compile(r"[A-Za-z0-9._-]{1,100}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class Violations:
    """Collects every broken rule of a request, so the caller sees them all at once."""

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._items.append(FieldViolation(field, description))

    def __bool__(self) -> bool:
        return bool(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            summary = "; ".join(f"{v.field}: {v.description}" for v in self._items)
            raise InvalidInput(f"invalid request: {summary}", violations=tuple(self._items))

    def uuid(self, field: str, value: str, *, required: bool = True) -> UUID | None:
        """The UUID in `value`, or None after recording why it is not one."""
        if not value:
            if required:
                self.add(field, "required: a UUID such as 550e8400-e29b-41d4-a716-446655440000")
            return None
        try:
            parsed = UUID(value)
        except ValueError:
            self.add(field, f"not a UUID: {value[:64]!r}")
            return None
        return parsed

    def text(self, field: str, value: str, *, max_len: int, required: bool = True) -> str:
        """`value` stripped; records a violation when empty (if required) or too long."""
        stripped = value.strip()
        if required and not stripped:
            self.add(field, "required")
        elif len(stripped) > max_len:
            self.add(field, f"at most {max_len} characters, got {len(stripped)}")
        elif any(ord(c) < 32 for c in stripped):
            self.add(field, "must not contain control characters")
        return stripped

    def channel(self, field: str, value: str) -> str:
        if not value:
            return DEFAULT_CHANNEL
        if not _CHANNEL.fullmatch(value):
            self.add(field, "1..100 characters of letters, digits, '.', '_' or '-'")
        return value

    def currency(self, field: str, value: str) -> str:
        if not _CURRENCY.fullmatch(value):
            self.add(field, f"an ISO 4217 code of three upper-case letters, got {value[:16]!r}")
        return value

    def int_range(self, field: str, value: int, low: int, high: int) -> int:
        if not low <= value <= high:
            self.add(field, f"must be between {low} and {high}, got {value}")
        return value

    def coordinate(self, field: str, value: float, limit: float) -> float:
        if not math.isfinite(value) or not -limit <= value <= limit:
            self.add(field, f"must be between {-limit:g} and {limit:g}, got {value}")
        return value

    def future_time(self, field: str, value: datetime | None, now: datetime) -> datetime | None:
        if value is not None and value <= now:
            self.add(field, "must be in the future")
        return value

    def page_size(self, field: str, value: int) -> int:
        """AIP-158: 0 means the default, above the maximum is capped, negative is invalid."""
        if value < 0:
            self.add(field, f"must not be negative, got {value}")
            return DEFAULT_PAGE_SIZE
        if value == 0:
            return DEFAULT_PAGE_SIZE
        return min(value, MAX_PAGE_SIZE)
