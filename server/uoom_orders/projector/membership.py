"""The consumer's place in its group: joined with an assignment, or still joining, and for how
long; and when a join has taken so long that the consumer should leave and join again.

A join normally takes a fraction of the session timeout. The local tansu broker can answer two
members that join at the same moment with a group that has no leader: both then rejoin in step
forever and nothing is projected. A new member, after a random pause, breaks the tie; with
Kafka it costs one extra join.
"""

from __future__ import annotations

import time
from typing import Any

from aiokafka import ConsumerRebalanceListener


def stuck_join_seconds(session_timeout_ms: int) -> float:
    """How long a join may last before the consumer leaves it: 3 session timeouts, at least 5 s."""
    return max(5.0, 3 * session_timeout_ms / 1000)


class GroupMembership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells whether the consumer is in the group with an assignment (possibly empty) or still
    joining: a join starts when partitions are revoked and ends when some are assigned."""

    def __init__(self) -> None:
        self._joining_since: float | None = time.monotonic()

    def joining_for(self) -> float:
        """Seconds since the current join began; 0 when the consumer has its assignment."""
        since = self._joining_since
        return 0.0 if since is None else time.monotonic() - since

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if self._joining_since is None:
            self._joining_since = time.monotonic()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._joining_since = None
