"""The in-process fan-out of the event feed to the watches open on this replica.

The near cache's feed already sees every event on every replica. After applying one to the
cache it hands it to `publish`, which finds the watches of that order and of its restaurant in
two dictionary lookups (an event nobody watches costs nothing more) and puts the change in
each one's bounded mailbox. Publishing never waits: a watch's own task takes its changes and
writes them to its stream at the pace its caller reads.

A watch may only rely on its feed while the feed is live. The hub checks that every
`feed_check_seconds`; when the feed is not live, every watch ends with FEED_NOT_LIVE (the
caller resumes on a healthy replica) and new ones are refused. When the feed starts again from
the end of the topic (it may have missed events), it says so before its next event (`feed_gap`)
and every watch ends at once, however short the outage was. At shutdown (`shut_down`,
called by the gRPC server before it drains) every watch ends with SHUTTING_DOWN at once, so no
stream holds the grace period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from uoom.orders.v1 import order_events_pb2, order_pb2

from uoom_orders.domain.errors import TooManyWatches, WatchInterrupted
from uoom_orders.observability import metrics
from uoom_orders.runtime.lifecycle import LongRunning
from uoom_orders.runtime.tasks import cancel_and_wait
from uoom_orders.watch.change import Change, change_from_event
from uoom_orders.watch.mailbox import Mailbox

_log = logging.getLogger(__name__)

ORDER = "order"
RESTAURANT = "restaurant"
# The retry hints the watches' errors carry (google.rpc.RetryInfo): a feed comes back within
# about a second of its broker; a replica shutting down is gone, so go elsewhere now.
FEED_RETRY_SECONDS = 1.0
SHUTDOWN_RETRY_SECONDS = 0.0
FULL_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class WatchLimits:
    max_streams: int = 10_000
    queue_limit: int = 32
    feed_check_seconds: float = 0.1


def feed_not_live() -> WatchInterrupted:
    return WatchInterrupted(
        "this replica's event feed is not live; resume on another replica",
        reason="FEED_NOT_LIVE",
        retry_delay=FEED_RETRY_SECONDS,
    )


def shutting_down() -> WatchInterrupted:
    return WatchInterrupted(
        "this replica is shutting down; resume on another replica",
        reason="SHUTTING_DOWN",
        retry_delay=SHUTDOWN_RETRY_SECONDS,
    )


def too_slow() -> WatchInterrupted:
    return WatchInterrupted(
        "the caller fell too far behind the changes; resume from the last resume_token",
        reason="WATCH_TOO_SLOW",
        retry_delay=0.0,
    )


class Subscription:
    """One watch's end of the hub; `with` it, so that leaving removes it."""

    def __init__(
        self,
        hub: WatchHub,
        kind: str,
        key: str,
        limit: int,
        accepts: Callable[[Change], bool] | None,
    ) -> None:
        self._hub = hub
        self.kind = kind
        self.key = key
        self._accepts = accepts
        self._mailbox = Mailbox(limit)
        self._ready = asyncio.Event()
        self._coalesced = metrics.WATCH_COALESCED.labels(kind=kind)
        self.ended: WatchInterrupted | None = None

    def offer(self, change: Change) -> None:
        """Called by the hub for each change of this watch's order or restaurant."""
        if self.ended is not None or (self._accepts is not None and not self._accepts(change)):
            return
        mailbox = self._mailbox
        before = mailbox.coalesced
        mailbox.put(change)
        if mailbox.coalesced != before:
            self._coalesced.inc(mailbox.coalesced - before)
        if mailbox.overflowed:
            self.end(too_slow())
        self._ready.set()

    def end(self, reason: WatchInterrupted) -> None:
        """The watch must end: its next `changes()` raises `reason`; what waits is dropped
        (the caller resumes from what it received, and gets the newest state then)."""
        if self.ended is None:
            self.ended = reason
            self._ready.set()

    async def changes(self) -> list[Change]:
        """The changes that came since the last call, oldest first, once there is one; raises
        WatchInterrupted when the watch must end."""
        while True:
            if self.ended is not None:
                raise self.ended
            if len(self._mailbox):
                return self._mailbox.take_all()
            self._ready.clear()
            await self._ready.wait()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._hub._remove(self)


class WatchHub(LongRunning):
    """Routes the feed's changes to the subscriptions of their order and restaurant."""

    def __init__(self, limits: WatchLimits, feed_is_live: Callable[[], bool]) -> None:
        self._limits = limits
        self._feed_is_live = feed_is_live
        self._by_key: dict[str, dict[str, set[Subscription]]] = {ORDER: {}, RESTAURANT: {}}
        self._count = 0
        self._accepting = False
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return self._count

    def publish(
        self, event: order_events_pb2.OrderEvent, summary: order_pb2.OrderSummary | None
    ) -> None:
        """Hands an event the feed applied to the watches of its order and restaurant."""
        orders = self._by_key[ORDER].get(event.order_id or event.order.order_id)
        restaurants = (
            self._by_key[RESTAURANT].get(summary.restaurant_id) if summary is not None else None
        )
        if not orders and not restaurants:
            return
        change = change_from_event(event, summary)
        for subscription in (*(orders or ()), *(restaurants or ())):
            subscription.offer(change)

    def subscribe(
        self, kind: str, key: str, accepts: Callable[[Change], bool] | None = None
    ) -> Subscription:
        """A new watch of an order (`kind` ORDER, `key` its id) or a restaurant; raises
        WatchInterrupted when this replica cannot serve one now, TooManyWatches when it holds
        `max_streams` already."""
        if not self._accepting:
            raise shutting_down()
        if not self._feed_is_live():
            raise feed_not_live()
        if self._count >= self._limits.max_streams:
            raise TooManyWatches(
                f"this replica holds {self._count} watches, its most; retry on another",
                retry_delay=FULL_RETRY_SECONDS,
            )
        subscription = Subscription(self, kind, key, self._limits.queue_limit, accepts)
        self._by_key[kind].setdefault(key, set()).add(subscription)
        self._count += 1
        metrics.WATCH_ACTIVE.labels(kind=kind).inc()
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        by_key = self._by_key[subscription.kind]
        watching = by_key.get(subscription.key)
        if watching is None or subscription not in watching:
            return
        watching.discard(subscription)
        if not watching:
            del by_key[subscription.key]
        self._count -= 1
        metrics.WATCH_ACTIVE.labels(kind=subscription.kind).dec()

    def end_all(self, reason: Callable[[], WatchInterrupted]) -> int:
        """Ends every open watch with a fresh `reason()`; returns how many."""
        ended = 0
        for by_key in self._by_key.values():
            for watching in by_key.values():
                for subscription in watching:
                    if subscription.ended is None:
                        subscription.end(reason())
                        ended += 1
        return ended

    def feed_gap(self) -> None:
        """The feed may have missed events (it starts again from the end of the topic): no
        open watch can know what it missed."""
        ended = self.end_all(feed_not_live)
        if ended:
            _log.warning("event feed restarted from the end: ended %d watches", ended)

    async def start(self) -> None:
        self._accepting = True
        if self._task is None:
            self._task = asyncio.create_task(self._follow_feed(), name="watch-hub-feed-check")

    async def shut_down(self) -> None:
        """Refuses new watches and ends every open one (SHUTTING_DOWN). Safe to call twice."""
        self._accepting = False
        ended = self.end_all(shutting_down)
        if ended:
            _log.info("shutting down: ended %d watches", ended)

    async def stop(self) -> None:
        await self.shut_down()
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _follow_feed(self) -> None:
        was_live = self._feed_is_live()
        while True:
            await asyncio.sleep(self._limits.feed_check_seconds)
            live = self._feed_is_live()
            if not live:
                ended = self.end_all(feed_not_live)
                if ended:
                    _log.warning("event feed not live: ended %d watches", ended)
            if live != was_live:
                _log.info(
                    "event feed %s: watches %s",
                    *(("live", "accepted") if live else ("not live", "refused")),
                )
            was_live = live
