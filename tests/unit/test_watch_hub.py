"""The hub: the feed's changes routed to the watches of their order and restaurant, the watch
limit, and every watch ended when the feed stops being live or the replica shuts down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from uoom.orders.v1 import order_events_pb2

from tests.support.watch_changes import RESTAURANT, event
from uoom_orders.domain.errors import TooManyWatches, WatchInterrupted
from uoom_orders.watch.hub import ORDER, WatchHub, WatchLimits
from uoom_orders.watch.hub import RESTAURANT as BOARD

A, B = str(uuid.uuid4()), str(uuid.uuid4())


class Feed:
    live = True

    def is_live(self) -> bool:
        return self.live


@pytest.fixture
def feed() -> Feed:
    return Feed()


@pytest.fixture
async def hub(feed: Feed) -> AsyncIterator[WatchHub]:
    limits = WatchLimits(max_streams=3, queue_limit=2, feed_check_seconds=0.01)
    async with WatchHub(limits, feed.is_live) as running:
        yield running


async def test_a_change_reaches_the_watches_of_its_order_and_of_its_restaurant(
    hub: WatchHub,
) -> None:
    with (
        hub.subscribe(ORDER, A) as order_a,
        hub.subscribe(ORDER, B) as order_b,
        hub.subscribe(BOARD, RESTAURANT) as board,
    ):
        hub.publish(*event(A, 2))
        assert [c.version for c in await order_a.changes()] == [2]
        assert [c.order_id for c in await board.changes()] == [A]
        waiting = asyncio.create_task(order_b.changes())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # nothing for B
        hub.publish(*event(B, 3))
        assert [c.version for c in await waiting] == [3]
    assert len(hub) == 0


async def test_a_slow_watch_gets_the_newest_version_and_never_loses_the_final_one(
    hub: WatchHub,
) -> None:
    with hub.subscribe(ORDER, A) as watch:
        for version in range(2, 7):
            hub.publish(*event(A, version))  # nobody reads meanwhile: past the limit of 2
        [newest] = await watch.changes()
        assert newest.version == 6
        assert newest.terminal


async def test_a_board_that_falls_behind_on_too_many_orders_ends_too_slow(hub: WatchHub) -> None:
    with hub.subscribe(BOARD, RESTAURANT) as board:
        for order_id in (A, B, str(uuid.uuid4())):
            hub.publish(*event(order_id, 2))
        with pytest.raises(WatchInterrupted) as ended:
            await board.changes()
        assert ended.value.reason == "WATCH_TOO_SLOW"


async def test_a_board_filter_sees_only_what_it_accepts(hub: WatchHub) -> None:
    with hub.subscribe(BOARD, RESTAURANT, accepts=lambda c: c.version == 3) as board:
        hub.publish(*event(A, 2))
        hub.publish(*event(A, 3))
        assert [c.version for c in await board.changes()] == [3]


async def test_removals_reach_the_order_s_watches(hub: WatchHub) -> None:
    with hub.subscribe(ORDER, A) as watch:
        hub.publish(*event(A, 0, order_events_pb2.ORDER_EVENT_TYPE_REMOVED))
        [removed] = await watch.changes()
        assert removed.summary is None


async def test_beyond_the_limit_a_watch_is_refused_until_one_ends(hub: WatchHub) -> None:
    watches = [hub.subscribe(ORDER, A) for _ in range(3)]
    with pytest.raises(TooManyWatches) as refused:
        hub.subscribe(ORDER, B)
    assert refused.value.retry_delay is not None
    with watches.pop():
        pass
    with hub.subscribe(ORDER, B):
        assert len(hub) == 3
    for watch in watches:
        watch.__exit__(None, None, None)
    assert len(hub) == 0


async def test_when_the_feed_is_not_live_every_watch_ends_and_new_ones_are_refused(
    hub: WatchHub, feed: Feed
) -> None:
    with hub.subscribe(ORDER, A) as order_watch, hub.subscribe(BOARD, RESTAURANT) as board:
        hub.publish(*event(A, 2))  # waiting, then dropped: the caller resumes from what it has
        feed.live = False
        for _ in range(1000):  # the hub checks every 10 ms here: 5 s at most
            if order_watch.ended is not None:
                break
            await asyncio.sleep(0.005)
        for watch in (order_watch, board):
            with pytest.raises(WatchInterrupted) as ended:
                await watch.changes()
            assert ended.value.reason == "FEED_NOT_LIVE"
            assert ended.value.retry_delay == 1.0
        with pytest.raises(WatchInterrupted, match="feed"):
            hub.subscribe(ORDER, B)
    feed.live = True
    with hub.subscribe(ORDER, B):
        pass


async def test_shut_down_ends_every_watch_at_once_and_refuses_new_ones(hub: WatchHub) -> None:
    with hub.subscribe(ORDER, A) as watch:
        waiting = asyncio.create_task(watch.changes())
        await asyncio.sleep(0)
        await hub.shut_down()
        with pytest.raises(WatchInterrupted) as ended:
            await asyncio.wait_for(waiting, timeout=1)
        assert ended.value.reason == "SHUTTING_DOWN"
        with pytest.raises(WatchInterrupted, match="shutting down"):
            hub.subscribe(ORDER, B)


async def test_an_event_nobody_watches_is_dropped(hub: WatchHub) -> None:
    hub.publish(*event(A, 2))  # no watch: nothing kept
    with hub.subscribe(ORDER, A) as watch:
        waiting = asyncio.create_task(watch.changes())
        await asyncio.sleep(0.02)
        assert not waiting.done()
        waiting.cancel()


async def test_a_gap_in_the_feed_ends_every_watch_at_once(hub: WatchHub) -> None:
    with hub.subscribe(ORDER, A) as watch:
        hub.feed_gap()  # the feed starts again from the end: events may be lost
        hub.publish(*event(A, 3))  # after the gap: too late for this watch
        with pytest.raises(WatchInterrupted) as ended:
            await watch.changes()
        assert ended.value.reason == "FEED_NOT_LIVE"
    with hub.subscribe(ORDER, A):  # the feed is live: new watches start from a read
        pass
