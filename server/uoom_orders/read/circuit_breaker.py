"""A per-tier circuit breaker: stop waiting on a store that keeps failing, probe it, recover.

Hand-written rather than taken from a library on purpose: it sits on the hot path of every
read, where it must cost a couple of attribute reads; the libraries found (purgatory,
aiobreaker) route each call through message buses or locks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum

from uoom_orders.observability.metrics import TIER_BREAKER_STATE


class BreakerState(IntEnum):
    """Values exported in `order_read_tier_breaker_state`."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures; after `reset_seconds` lets one
    probe through (half-open); a successful probe closes it, a failed one re-opens it."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._reset_seconds = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._state = BreakerState.CLOSED
        self._gauge = TIER_BREAKER_STATE.labels(tier=name)
        self._gauge.set(BreakerState.CLOSED)

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow(self) -> bool:
        """Whether a call may go to the tier now. In half-open, only one probe at a time."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self._reset_seconds:
                return False
            self._set(BreakerState.HALF_OPEN)
        if self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._probing = False
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._probing = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        self._state = state
        self._gauge.set(state)
