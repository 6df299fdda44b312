"""What the load saw: acknowledged writes, answers that went back in time, errors by code."""

from __future__ import annotations

import collections
import random
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

from uoom_orders_client import order_pb2

MAX_EXAMPLES = 5
"""Examples kept per kind of regression, for the report."""


@dataclass(frozen=True, slots=True)
class Regression:
    """An answer older than one that had already been answered to the same observer."""

    order_id: str
    seen_before: int
    answered: int
    where: str
    """Which observer (replica and incarnation, or client) and, when known, the tier served."""


@dataclass
class Tally:
    """Counters for one fault's window (steady load, the fault, the settling after it)."""

    writes_acknowledged: int = 0
    writes_not_sent: int = 0
    """Writes the load generator skipped because too many were in flight (its own limit)."""
    reads: int = 0
    reads_not_sent: int = 0
    write_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    read_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    """Errors of the client package's readers (round robin over the replicas, with retries)."""
    raw_read_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    """Errors of the raw readers, each bound to one replica (a killed replica's are expected)."""
    regressions: dict[str, int] = field(
        default_factory=lambda: {"same-replica": 0, "client": 0, "cross-replica": 0}
    )
    regressions_by_tier: collections.Counter[str] = field(default_factory=collections.Counter)
    """Same-replica regressions by the tier that served the older answer."""
    examples: dict[str, list[Regression]] = field(
        default_factory=lambda: {"same-replica": [], "client": [], "cross-replica": []}
    )

    def regression(self, kind: str, example: Regression, tier: str | None = None) -> None:
        """Counts one regression of `kind` and keeps it as an example while there are few."""
        self.regressions[kind] += 1
        if tier is not None:
            self.regressions_by_tier[tier] += 1
        if len(self.examples[kind]) < MAX_EXAMPLES:
            self.examples[kind].append(example)


class MonotonicReads:
    """Finds answers older than an answer the same observer had already received.

    An observer is a key: (replica, incarnation), a client object, or everyone. For each
    (observer, order) it keeps the highest version among the answers that had *completed*
    before a call began; an answer below that is a regression. Calls that overlap are not
    ordered against each other, so concurrency never counts as a regression.
    """

    def __init__(self) -> None:
        self._completed: dict[tuple[Hashable, str], int] = {}

    def floor(self, observer: Hashable, order_id: str) -> int:
        """Taken when a call begins: the version no later answer may go below."""
        return self._completed.get((observer, order_id), 0)

    def answered(self, observer: Hashable, order_id: str, floor: int, version: int) -> bool:
        """Records a completed answer (version 0: not found); True when it regressed."""
        key = (observer, order_id)
        if version > self._completed.get(key, 0):
            self._completed[key] = version
        return version < floor


@dataclass(frozen=True, slots=True)
class AcknowledgedWrite:
    order_id: str
    version: int
    status: order_pb2.OrderStatus.ValueType


class WriteLedger:
    """Every acknowledged write, and the orders touched recently (what readers read)."""

    def __init__(self, recent: int = 200) -> None:
        self._writes: list[AcknowledgedWrite] = []
        self._recent: collections.deque[str] = collections.deque(maxlen=recent)
        self._recent_set: set[str] = set()
        self.orders: dict[str, int] = {}
        """Order id → highest acknowledged version."""

    def __len__(self) -> int:
        return len(self._writes)

    def acknowledge(
        self, order_id: str, version: int, status: order_pb2.OrderStatus.ValueType
    ) -> None:
        self._writes.append(AcknowledgedWrite(order_id, version, status))
        if version > self.orders.get(order_id, 0):
            self.orders[order_id] = version
        if order_id not in self._recent_set:
            if len(self._recent) == self._recent.maxlen:
                self._recent_set.discard(self._recent[0])
            self._recent.append(order_id)
            self._recent_set.add(order_id)

    def recent_orders(self, rng: random.Random, count: int) -> list[str]:
        """`count` distinct orders among the recently written ones (fewer if there are few)."""
        pool = list(self._recent)
        return rng.sample(pool, min(count, len(pool)))

    def writes(self) -> Iterable[AcknowledgedWrite]:
        return iter(self._writes)

    def lost(
        self, postgres: Mapping[str, tuple[int, order_pb2.OrderStatus.ValueType]]
    ) -> list[AcknowledgedWrite]:
        """The acknowledged writes PostgreSQL does not hold: order missing, version lower, or
        the same version with another status. `postgres` maps order id → (version, status)."""
        lost = []
        for write in self._writes:
            found = postgres.get(write.order_id)
            if (
                found is None
                or found[0] < write.version
                or (found[0] == write.version and found[1] != write.status)
            ):
                lost.append(write)
        return lost
