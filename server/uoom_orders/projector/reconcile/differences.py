"""What a reconciliation pass finds, as pure functions: how a table's item differs from the
order PostgreSQL holds, and which scanned items name an order at all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from uoom.orders.v1 import order_pb2

from uoom_orders import wire
from uoom_orders.dynamodb import items
from uoom_orders.dynamodb.tables import STATUS_TABLE


class DifferenceKind(StrEnum):
    MISSING = "missing"
    """No item, or an expired one, for an order PostgreSQL has."""
    OLDER = "older"
    """The item holds an older version (the projector is behind or missed an event)."""
    NEWER = "newer"
    """The item holds a version PostgreSQL never kept (a lost commit)."""
    CONTENT = "content"
    """Same version, other content (a lost commit whose version number was reused)."""
    ORPHAN = "orphan"
    """An item of an order PostgreSQL does not have at all (a lost create)."""


CORRECTED_KINDS = frozenset({DifferenceKind.NEWER, DifferenceKind.CONTENT})
"""Kinds after which a near cache may hold what PostgreSQL never had: they get a correction."""


@dataclass(frozen=True, slots=True)
class Difference:
    """One table's item of one order, as found."""

    order_id: str
    table: str
    kind: DifferenceKind
    item_version: int | None
    source_version: int | None


@dataclass
class ReconcileReport:
    """What one pass found and did."""

    checked: int = 0
    scanned: int = 0
    differences: list[Difference] = field(default_factory=list)
    repaired: int = 0
    raced: int = 0
    corrections: int = 0
    rejected: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> Counter[tuple[str, str]]:
        """Differences by (table, kind)."""
        return Counter((d.table, d.kind.value) for d in self.differences)

    @property
    def orders_per_second(self) -> float:
        return self.checked / self.seconds if self.seconds > 0 else 0.0


def classify(
    table: str, item: Mapping[str, Any] | None, order: order_pb2.Order, now: float
) -> DifferenceKind | None:
    """How a table's item differs from PostgreSQL's order; None when it does not."""
    if item is None or items.is_expired(item, now):
        return DifferenceKind.MISSING
    version = item_version_or_none(item)
    if version is None:
        return DifferenceKind.CONTENT
    if version < order.version:
        return DifferenceKind.OLDER
    if version > order.version:
        return DifferenceKind.NEWER
    try:
        if table == STATUS_TABLE:
            same = items.summary_from_item(item) == wire.summary_from_order(order)
        else:
            same = items.order_from_item(item) == order
    except ValueError:
        same = False
    return None if same else DifferenceKind.CONTENT


def item_version_or_none(item: Mapping[str, Any]) -> int | None:
    """The item's version; None when it has none that parses (not written by this service)."""
    try:
        return items.item_version(item)
    except (ValueError, TypeError, KeyError):
        return None


def by_order_id(scanned: Iterable[items.Item]) -> tuple[dict[str, items.Item], list[items.Item]]:
    """Scanned items by their order id, and apart those whose id is no order id at all (an
    orphan whatever PostgreSQL holds)."""
    found: dict[str, items.Item] = {}
    malformed: list[items.Item] = []
    for item in scanned:
        try:
            UUID(item[items.ORDER_ID]["S"])
        except (KeyError, TypeError, ValueError):
            malformed.append(item)
            continue
        found[item[items.ORDER_ID]["S"]] = item
    return found, malformed
