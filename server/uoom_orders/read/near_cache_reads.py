"""Status reads the near cache answers, each in one step.

Nearly every status read is a near-cache hit. Through the read path a hit takes about thirty
Python calls — the id parsed, the query, the tier chain's generic step (its guards, its timing,
the floor, the version test), the answer's framing — and a Python call made between gRPC's work
in a busy server costs several times what it costs in a tight loop (docs/benchmark-notes.md):
those calls were most of the service's CPU per call beyond a bare gRPC server's. Here a hit is
one method from the request's fields to the response's encoding (the near cache keeps each
record as the status reads answer it: wire.status_answer), with the same rules and the same
counts.

The rules are the read path's: the id in canonical form (what the request's checks accept),
`min_version` not negative, the near cache's feed live, an entry of the current generation not
expired, and its version at `min_version` and at this replica's floor or later. When any of
them fails, these methods answer None and the read path answers the call as it always did (a
miss, a lower tier, an error, each counted there); a property test holds the two to the same
answers and counts. What is counted for an answer here is what the read path counts for a
near-cache answer: the tier's hits, an answer served, and the time it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from uoom_orders.domain import contract_rules as rules
from uoom_orders.domain.validation import canonical_uuid, canonical_uuids
from uoom_orders.read.near_cache import NearCache
from uoom_orders.read.tiers import Tier


class NearCacheReads:
    """The near cache's answers to status reads, encoded, as the read path would give them.

    `tier` is the read path's near-cache tier (its counts are the ones kept here)."""

    def __init__(self, cache: NearCache, is_live: Callable[[], bool], tier: Tier) -> None:
        self._cache = cache
        self._is_live = is_live
        self._tier = tier
        self.name = tier.name

    def summary(self, order_id: str, min_version: int) -> bytes | None:
        """The encoded GetOrderStatusResponse, when the read path would answer this
        GetOrderStatus from the near cache; None when it would not."""
        started = time.perf_counter()
        parsed = canonical_uuid(order_id)
        if parsed is None or min_version < 0 or not self._is_live():
            return None
        entry = self._cache.answering(parsed, min_version)
        if entry is None:
            return None
        self._tier.answered(1, time.perf_counter() - started)
        return entry.status_answer

    def summaries(self, order_ids: Sequence[str]) -> bytes | None:
        """The encoded BatchGetOrderStatusResponse, when the read path would answer this
        BatchGetOrderStatus from the near cache alone (every id held: each once, in order of
        first appearance, none missing); None when it would not."""
        started = time.perf_counter()
        if not 0 < len(order_ids) <= rules.BATCH_IDS.max_ids or not self._is_live():
            return None
        # Each UUID has one canonical spelling: the first of equal strings is the first of
        # equal ids.
        parsed = canonical_uuids(list(dict.fromkeys(order_ids)))
        if not all(parsed):
            return None
        # No None left (all() asked).
        keys = [order_id.int for order_id in parsed]  # type: ignore[union-attr]
        # Unlike a single read, no floor is looked up, as in the read path: the near cache is
        # the replica's memory of versions, and what it holds is at the floor, which it raised
        # storing it.
        answers = self._cache.status_answers(keys)
        if answers is None:
            return None
        self._tier.answered(len(keys), time.perf_counter() - started)
        return b"".join(answers)
