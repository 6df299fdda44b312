"""The consumer's place in its group: joined with an assignment, or still joining, and for how
long; and when a join has taken so long that the consumer should leave and join again.

A join normally takes a fraction of the session timeout. The local tansu broker can answer two
members that join at the same moment with a group whose leader is neither of them; the join
then ends by itself, but late: after a pause of the broker, plain consumers restarted together
waited 1 to 26 s for an assignment. Leaving and joining again as a new member much sooner than
that kept them from ever joining (stalled for over 4 minutes in the same reproduction, and for
minutes in fault injection). So a join is left only after 45 s (or 3 session timeouts, if
longer): a last resort; with Kafka it costs one extra join.

What puts tansu (0.6) in that state is a member leaving the group (LeaveGroup, which a graceful
stop sends) after a pause of the broker. Reproduced with two plain consumers: the broker paused
8 s, then both stopped gracefully and started again 8 s later: neither got partitions within
60 s, twice in two runs; the same with both SIGKILLed instead (no LeaveGroup; their sessions
expire): both had partitions within 1-2 s, twice in two runs. So the local stack turns leaving
off (`PROJECTOR_LEAVE_GROUP_ON_STOP`, `stop_consumer`); with Kafka, leaving moves a stopping
projector's partitions at once instead of after the session timeout.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

_log = logging.getLogger(__name__)


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


async def stop_consumer(consumer: AIOKafkaConsumer, *, leave_group: bool) -> None:
    """Stops a group consumer; without `leave_group`, without telling the group (its session
    then expires, as a crashed member's would). aiokafka (0.12-0.14) has no setting for it: its
    coordinator leaves the group in `close()` through `_maybe_leave_group`, which is replaced
    here by nothing, for this consumer only, just before it stops."""
    if not leave_group:
        coordinator = getattr(consumer, "_coordinator", None)
        if coordinator is not None and hasattr(coordinator, "_maybe_leave_group"):
            coordinator._maybe_leave_group = _stay_in_group
        else:  # an aiokafka this was not written for: leaving is the safe default
            _log.warning("this aiokafka cannot stop without leaving the group; leaving it")
    await consumer.stop()


async def _stay_in_group() -> None:
    return None
