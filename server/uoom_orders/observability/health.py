"""What the process reports about itself: grpc.health.v1 statuses, gauges and log lines.

A store that is down but has a fallback makes the service *degraded* — still SERVING, visible
in `order_service_degraded`, `order_service_component_up` and a warning — not NOT_SERVING:
balancers must not take away a replica that still answers. `can_serve` decides when nothing
is left to answer with (bootstrap: no read tier and no PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from grpc_health.v1 import health, health_pb2

from uoom_orders.observability import metrics
from uoom_orders.runtime.lifecycle import LongRunning
from uoom_orders.runtime.tasks import cancel_and_wait

_log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class Component:
    """A store, feed or role to watch; `check` answers whether it works right now."""

    name: str
    check: Callable[[], Awaitable[bool]]


class HealthMonitor(LongRunning):
    """Checks every component each `interval` seconds and publishes the result; while one is
    down, every `interval_while_degraded` seconds, so that what waits for it to come back (a
    walk of a replaced read model, a breaker closing) starts soon after it does. `on_back` is
    called with a component's name when it works again after a check that found it down."""

    def __init__(
        self,
        components: list[Component],
        *,
        servicer: health.aio.HealthServicer | None,
        service_name: str,
        can_serve: Callable[[dict[str, bool]], bool] = lambda up: True,
        role_names: dict[str, str] | None = None,
        interval: float = 1.0,
        interval_while_degraded: float = 0.25,
        check_timeout: float = 1.0,
        on_tick: Callable[[], None] | None = None,
        on_back: Callable[[str], None] | None = None,
    ) -> None:
        self._components = components
        self._servicer = servicer
        self._service_name = service_name
        self._can_serve = can_serve
        self._role_names = role_names or {}
        self._interval = interval
        self._interval_while_degraded = min(interval, interval_while_degraded)
        self._check_timeout = check_timeout
        self._on_tick = on_tick
        self._on_back = on_back
        self._up: dict[str, bool] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def up(self) -> dict[str, bool]:
        return dict(self._up)

    @property
    def degraded(self) -> bool:
        return not all(self._up.values())

    async def check_once(self) -> None:
        results = await asyncio.gather(*(self._check(c) for c in self._components))
        for component, is_up in zip(self._components, results, strict=True):
            before = self._up.get(component.name)
            self._up[component.name] = is_up
            metrics.COMPONENT_UP.labels(component=component.name).set(1 if is_up else 0)
            if before is not None and before != is_up:
                if is_up:
                    _log.info("%s is back", component.name)
                    if self._on_back is not None:
                        self._on_back(component.name)
                else:
                    _log.warning("%s is down; serving degraded", component.name)
        metrics.DEGRADED.set(1 if self.degraded else 0)
        if self._servicer is not None:
            status = SERVING if self._can_serve(self._up) else NOT_SERVING
            await self._servicer.set(self._service_name, status)
            for role, health_name in self._role_names.items():
                role_up = self._up.get(role, False)
                await self._servicer.set(health_name, SERVING if role_up else NOT_SERVING)
        if self._on_tick is not None:
            self._on_tick()

    async def _check(self, component: Component) -> bool:
        try:
            async with asyncio.timeout(self._check_timeout):
                return await component.check()
        except Exception:
            return False

    async def _run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self._interval_while_degraded if self.degraded else self._interval)

    async def start(self) -> None:
        await self.check_once()
        self._task = asyncio.create_task(self._run(), name="health-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
