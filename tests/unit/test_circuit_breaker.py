"""The circuit breaker: open after failures, one probe when half-open, close on success."""

from __future__ import annotations

from uoom_orders.read.circuit_breaker import BreakerState, CircuitBreaker


def state(breaker: CircuitBreaker) -> BreakerState:
    """Read through a call, so each assertion sees the state afresh (no narrowing)."""
    return breaker.state


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker("t1", failure_threshold=3, clock=Clock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allow()


def test_half_open_lets_one_probe_through_and_recovers() -> None:
    clock = Clock()
    breaker = CircuitBreaker("t2", failure_threshold=1, reset_seconds=2, clock=clock)
    breaker.record_failure()
    assert not breaker.allow()
    clock.now += 2
    assert breaker.allow()  # the probe
    assert state(breaker) is BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one at a time
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.allow()


def test_a_failed_probe_opens_it_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker("t3", failure_threshold=5, reset_seconds=1, clock=clock)
    for _ in range(5):
        breaker.record_failure()
    clock.now += 1
    assert breaker.allow()
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()
