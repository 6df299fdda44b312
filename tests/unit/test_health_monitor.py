"""The health monitor checks more often while something is down, so that what waits for a
component to come back starts soon after it does, and at its normal pace otherwise."""

from __future__ import annotations

import asyncio
import time

from uoom_orders.observability.health import Component, HealthMonitor


class _Store:
    def __init__(self, up: bool) -> None:
        self.is_up = up
        self.checks = 0

    async def check(self) -> bool:
        self.checks += 1
        return self.is_up


def _monitor(store: _Store) -> HealthMonitor:
    return HealthMonitor(
        [Component("store", store.check)],
        servicer=None,
        service_name="svc",
        interval=30.0,
        interval_while_degraded=0.01,
    )


async def _checks_within(store: _Store, seconds: float) -> int:
    monitor = _monitor(store)
    async with monitor:
        await asyncio.sleep(seconds)
    return store.checks


async def test_a_down_component_is_checked_again_soon() -> None:
    store = _Store(up=False)
    async with _monitor(store):
        started = time.monotonic()
        # Every 0.01 s while degraded: five checks in a few hundredths (polled, with a deadline
        # far beyond the normal interval's five checks, which would take minutes).
        while store.checks < 5:
            assert time.monotonic() - started < 5.0, f"{store.checks} checks in 5 s"
            await asyncio.sleep(0.01)


async def test_healthy_components_are_checked_at_the_normal_interval() -> None:
    store = _Store(up=True)
    assert await _checks_within(store, 0.3) <= 2


async def test_a_component_coming_back_is_seen_within_the_short_interval() -> None:
    store = _Store(up=False)
    monitor = _monitor(store)
    async with monitor:
        await asyncio.sleep(0.05)
        assert monitor.degraded
        store.is_up = True
        deadline = time.monotonic() + 1.0
        while monitor.degraded:
            assert time.monotonic() < deadline, "still degraded after 1 s"
            await asyncio.sleep(0.005)
