"""Reconciliation (anti-entropy): the read model converges to PostgreSQL, whatever happened.

The projector keeps the read model current on the normal path. Everything else — an event the
projector never saw, a lost or emptied table, expired items, and above all a read model *ahead*
of PostgreSQL (a commit lost by a failover to an asynchronous replica or by a restore: its event
was published, the next commit reuses its version number, and "newest version wins" would keep
the lost one forever) — is found here, by comparing, and repaired from PostgreSQL.

One pass:
1. walks the orders PostgreSQL changed within the items' TTL (older orders' items have expired,
   as they should) in pages (keyset on order_id), reads both tables' items for the
   page (BatchGetItem) and only then the orders themselves, so an item newer than PostgreSQL
   is never a commit that simply landed between the two reads. Reads (and the scan) are
   eventually consistent, at half the read units of strongly consistent ones: a stale read
   only ever shows an item older than it is (or missing), never newer, and a repair is
   conditioned on the item read, so one made from a stale read finds the item changed and
   leaves it (counted as raced; the next pass looks again);
2. classifies each table's item: missing (or expired), older, newer, same version with other
   content, or equal (`differences`);
3. repairs each difference by writing PostgreSQL's order over *exactly the item it read*
   (condition on its version and update time, or on its absence): a projection racing the
   repair wins, and the next pass looks again (`repair`);
4. scans both tables (parallel segments) for items of orders PostgreSQL does not have at all,
   and deletes each, again only if it is still the item it read; an item ahead of PostgreSQL
   of an order the walk did not cover is checked and repaired as in 1-3;
5. for every order whose read model held something PostgreSQL never had (newer, other content,
   orphan), appends a correction event to the outbox, in a transaction that holds the order's
   row: in the stream it follows every change committed before it and precedes every later one,
   so every near cache can replace (or drop) what it holds whatever the version.

`dry_run` classifies and reports without writing anything. The `rebuild` command is a pass with
optional filters (it then skips the orphan scan). `Reconciler` runs passes and holds the stores
(`reconciler`); `ReconcileSchedule` runs one every so often, one process at a time (`schedule`).
"""

from __future__ import annotations

from uoom_orders.projector.reconcile.differences import (
    Difference,
    DifferenceKind,
    ReconcileReport,
)
from uoom_orders.projector.reconcile.reconciler import Reconciler
from uoom_orders.projector.reconcile.repair import Progress
from uoom_orders.projector.reconcile.schedule import RECONCILE_LOCK_KEY, ReconcileSchedule

__all__ = [
    "RECONCILE_LOCK_KEY",
    "Difference",
    "DifferenceKind",
    "Progress",
    "ReconcileReport",
    "ReconcileSchedule",
    "Reconciler",
]
