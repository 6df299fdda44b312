"""The consumer's place in its group: joined with an assignment, or still joining, and for how
long; and when a join has taken so long that the consumer should leave and join again.

A join normally takes a fraction of the session timeout. The local tansu broker can answer two
members that join at the same moment with a group whose leader is neither of them; the join
then ends by itself, but late: after a pause of the broker, plain consumers restarted together
waited 1 to 26 s for an assignment. Leaving and joining again as a new member much sooner than
that kept them from ever joining (stalled for over 4 minutes in the same reproduction, and for
minutes in fault injection). So a join is left only after 45 s (or 3 session timeouts, if
longer): a last resort; with Kafka it costs one extra join.
"""

from __future__ import annotations

import time
from typing import Any

from aiokafka import ConsumerRebalanceListener


def stuck_join_seconds(session_timeout_ms: int) -> float:
    """How long a join may last before the consumer leaves it: 3 session timeouts, at least
    45 s (see the module's doc)."""
    return max(45.0, 3 * session_timeout_ms / 1000)


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
