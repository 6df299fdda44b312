"""The relay's retry delays: exponential, capped, jittered, reset after success."""

from __future__ import annotations

import pytest

from uoom_orders.relay.backoff import Backoff


def test_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(0.05, 5.0, random_fraction=lambda: 1.0)  # no jitter: the full delay
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays[:4] == pytest.approx([0.05, 0.1, 0.2, 0.4])
    assert max(delays) == 5.0
    assert delays[-1] == 5.0
    assert backoff.attempts == 10


def test_jitter_keeps_at_least_half_the_delay() -> None:
    backoff = Backoff(1.0, 1.0, random_fraction=lambda: 0.0)
    assert backoff.next_delay() == 0.5


def test_reset_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(0.05, 5.0, random_fraction=lambda: 1.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.next_delay() == pytest.approx(0.05)


def test_a_long_outage_never_overflows() -> None:
    backoff = Backoff(0.05, 5.0)
    for _ in range(10_000):
        assert 2.5 <= backoff.next_delay() <= 5.0 or backoff.attempts < 8


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(0.0, 1.0)
    with pytest.raises(ValueError, match="initial"):
        Backoff(2.0, 1.0)
