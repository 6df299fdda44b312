"""One reconciliation pass: checks pages of orders, scans for orphans, repairs what differs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from uoom.orders.v1 import order_pb2

from uoom_orders.dynamodb import items
from uoom_orders.dynamodb.ports import ReadModelWriteRejected
from uoom_orders.dynamodb.tables import DETAILS_TABLE, STATUS_TABLE
from uoom_orders.observability import metrics
from uoom_orders.projector.reconcile.differences import (
    CORRECTED_KINDS,
    Difference,
    DifferenceKind,
    ReconcileReport,
    by_order_id,
    classify,
    item_version_or_none,
)

if TYPE_CHECKING:
    from uoom_orders.projector.reconcile.reconciler import Reconciler

_log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called after each page with (orders checked, orders in total)."""


@dataclass(frozen=True, slots=True)
class _Repair:
    """A difference to repair: `order` written over the item read (`expected`; None: none)."""

    table: str
    kind: DifferenceKind
    order: order_pb2.Order
    expected: items.ItemIdentity | None


class RepairPass:
    """The state of one pass (so that a Reconciler can run several, one after another)."""

    def __init__(
        self,
        reconciler: Reconciler,
        dry_run: bool,
        progress: Progress | None,
        total: int,
        walked_since: datetime,
    ) -> None:
        self._r = reconciler
        self._walked_since = walked_since
        # Orders the scan sent to a check: an order's items are in both tables' scans.
        self._scan_checked: set[UUID] = set()
        self._dry_run = dry_run
        self._progress = progress
        self._total = total
        self.report = ReconcileReport()
        self._corrected: set[str] = set()

    async def check_page(self, order_ids: Sequence[UUID]) -> None:
        ids = [str(i) for i in order_ids]
        # The items first, then the orders: an item newer than the order read after it is
        # a version PostgreSQL does not have, not a commit that landed in between.
        status_items, details_items = await asyncio.gather(
            self._r.read_items(STATUS_TABLE, ids), self._r.read_items(DETAILS_TABLE, ids)
        )
        orders = await self._r.read_orders(order_ids)
        now = self._r.now()
        repairs: list[_Repair] = []
        for order_id in ids:
            order = orders.get(order_id)
            if order is None:
                continue  # not in PostgreSQL any more: the orphan scan deals with its items
            for table, found in ((STATUS_TABLE, status_items), (DETAILS_TABLE, details_items)):
                item = found.get(order_id)
                kind = classify(table, item, order, now)
                if kind is not None:
                    repair = self._planned(table, kind, order, item)
                    if repair is not None:
                        repairs.append(repair)
        await self._repair(repairs)
        self.report.checked += len(ids)
        metrics.RECONCILE_CHECKED.inc(len(ids))
        if self._progress is not None:
            # Orders created during the pass can push the count past the first total.
            self._progress(self.report.checked, max(self._total, self.report.checked))

    async def scan_segment(self, table: str, segment: int) -> None:
        async for page in self._r.scan(table, segment):
            self.report.scanned += len(page)
            found, malformed = by_order_id(page)
            versions = await self._r.versions([UUID(i) for i in found]) if found else {}
            orphans = [item for i, item in found.items() if i not in versions] + malformed
            await _all([self._remove(table, item) for item in orphans])
            # Ahead of PostgreSQL, for an order the walk did not cover (it last changed before
            # the TTL window): checked and repaired as the walk would.
            ahead = [
                UUID(i)
                for i, item in found.items()
                if i in versions
                and versions[i][1] < self._walked_since
                and (item_version_or_none(item) or 0) > versions[i][0]
                and UUID(i) not in self._scan_checked
            ]
            self._scan_checked.update(ahead)
            if ahead:
                await self.check_page(ahead)

    def _planned(
        self,
        table: str,
        kind: DifferenceKind,
        order: order_pb2.Order,
        item: items.Item | None,
    ) -> _Repair | None:
        """Reports the difference; returns the write that repairs it (None: none is made)."""
        item_version = None if item is None else item_version_or_none(item)
        self._found(Difference(order.order_id, table, kind, item_version, order.version))
        if self._dry_run:
            return None
        try:
            expected = None if item is None else items.ItemIdentity.of(item)
        except ValueError:
            # No version or update time to match: not written by this service; left to a human.
            _log.error("reconcile: malformed item of order %s in %s", order.order_id, table)
            self.report.rejected.append(order.order_id)
            return None
        return _Repair(table, kind, order, expected)

    async def _repair(self, repairs: Sequence[_Repair]) -> None:
        """Writes the page's repairs together (transactions: Reconciler.write_all), then
        appends the corrections they call for."""
        if not repairs:
            return
        outcomes = await self._r.write_all([(r.table, r.order, r.expected) for r in repairs])
        corrected: list[str] = []
        for repair, outcome in zip(repairs, outcomes, strict=True):
            order_id = repair.order.order_id
            if isinstance(outcome, ReadModelWriteRejected | ValueError):
                _log.error("reconcile: order %s refused by %s: %s", order_id, repair.table, outcome)
                self.report.rejected.append(order_id)
                continue
            if outcome:
                self.report.repaired += 1
                metrics.RECONCILE_REPAIRS.labels(table=repair.table, kind=repair.kind.value).inc()
            else:
                self.report.raced += 1
            if repair.kind in CORRECTED_KINDS:
                corrected.append(order_id)
        await _all([self._correct(order_id) for order_id in corrected])

    async def _remove(self, table: str, item: items.Item) -> None:
        order_id = str(item.get(items.ORDER_ID, {}).get("S", ""))
        self._found(
            Difference(order_id, table, DifferenceKind.ORPHAN, item_version_or_none(item), None)
        )
        if self._dry_run:
            return
        try:
            expected = items.ItemIdentity.of(item)
        except ValueError:
            _log.error("reconcile: malformed orphan item in %s: %r", table, item)
            self.report.rejected.append(order_id)
            return
        if await self._r.delete(table, order_id, expected):
            self.report.repaired += 1
            metrics.RECONCILE_REPAIRS.labels(table=table, kind="orphan").inc()
        else:
            self.report.raced += 1
        with contextlib.suppress(ValueError):
            UUID(order_id)
            await self._correct(order_id)

    async def _correct(self, order_id: str) -> None:
        if order_id in self._corrected:
            return
        self._corrected.add(order_id)
        await self._r.append_correction(order_id)
        self.report.corrections += 1

    def _found(self, difference: Difference) -> None:
        self.report.differences.append(difference)
        metrics.RECONCILE_DIFFERENCES.labels(
            table=difference.table, kind=difference.kind.value
        ).inc()


async def _all(work: Sequence[Any]) -> None:
    """Awaits every repair, then raises the first failure (none is left running)."""
    outcomes = await asyncio.gather(*work, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
