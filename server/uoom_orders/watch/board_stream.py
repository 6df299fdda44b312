"""WatchRestaurantOrders: a restaurant's board, then every change to its orders as it happens.

The subscription is taken first, then the board is read from PostgreSQL itself: the read model
lags the feed by the projection lag, and an order changed just before the watch began would
otherwise be neither on the board nor in the mailbox. What both hold is sent once (versions
are compared per order). The versions of the orders changed in the last RESUME_OVERLAP are
read too, so that their events still on their way (a cancelled order's, say: not on the board)
are known for what they are, old news, and not sent.

Resume tokens hold a time, the *watermark*: every change committed before it had been sent
when the token was handed out, give or take the order in which the feed's partitions deliver
(milliseconds). Resumed, the stream first sends every order of the restaurant changed since
the watermark minus RESUME_OVERLAP, whatever its status (one that left the filter's status is
how the caller learns to take it off), so a change from just before the token may come again:
callers keep the higher version. Until the stream is caught up, its messages carry the token
it was started with (none for a fresh board: a caller cut off then starts again).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

from uoom.orders.v1 import order_pb2
from uoom.orders.v1 import order_service_pb2 as pb

from uoom_orders import wire
from uoom_orders.domain.errors import FieldViolation, InvalidInput
from uoom_orders.domain.lifecycle import TERMINAL
from uoom_orders.domain.order import OrderStatus
from uoom_orders.read.ports import ListQuery, PageCursor
from uoom_orders.watch.change import Change
from uoom_orders.watch.hub import RESTAURANT, WatchHub
from uoom_orders.watch.push import Pusher

# The initial orders of a board (or of a resume): at most this many, the most recently updated.
BOARD_MAX_ORDERS = 1000
RESUME_OVERLAP = timedelta(seconds=5)
TOKEN_PURPOSE = "board"
_PAGE = 100
# Orders whose last sent version the stream remembers (for duplicates and skipped counts).
_SENT_MEMORY = 4 * BOARD_MAX_ORDERS
_ON_BOARD = tuple(status for status in OrderStatus if status not in TERMINAL)

Summary = order_pb2.OrderSummary


class BoardReads(Protocol):
    async def list_from_source(self, query: ListQuery) -> list[Summary]: ...


class ResumeTokens(Protocol):
    def encode(self, query: ListQuery, cursor: PageCursor, *, purpose: str) -> str: ...

    def decode(self, query: ListQuery, token: str, *, purpose: str) -> PageCursor: ...


def _updated_at(summary: Summary) -> datetime:
    return summary.updated_at.ToDatetime(tzinfo=UTC)


def _accepts(wanted: int | None) -> Callable[[Change], bool]:
    """The changes a board shows: with a status filter, those into or out of that status."""

    def accepts(change: Change) -> bool:
        summary = change.summary
        if summary is None:  # a removed order (a lost create): not shown on boards
            return False
        return (
            wanted is None
            or change.corrected
            or summary.status == wanted
            or change.previous_status == wanted
        )

    return accepts


class _SentVersions:
    """The last version sent of each order, for the `_SENT_MEMORY` most recent orders."""

    def __init__(self) -> None:
        self._versions: OrderedDict[str, int] = OrderedDict()

    def get(self, order_id: str) -> int | None:
        return self._versions.get(order_id)

    def note(self, summary: Summary) -> None:
        self._versions[summary.order_id] = summary.version
        self._versions.move_to_end(summary.order_id)
        if len(self._versions) > _SENT_MEMORY:
            self._versions.popitem(last=False)


async def _newest_first(
    reads: BoardReads, query: ListQuery, since: datetime | None, cap: int
) -> list[Summary]:
    """The query's orders, newest first, down to `since` (None: all), at most `cap`."""
    found: list[Summary] = []
    page_query = dataclasses.replace(query, limit=_PAGE, after=None)
    while len(found) < cap:
        page = await reads.list_from_source(page_query)
        for summary in page:
            if since is not None and _updated_at(summary) < since:
                return found
            found.append(summary)
        if len(page) < page_query.limit:
            break
        last = page[-1]
        page_query = dataclasses.replace(
            page_query, after=PageCursor(_updated_at(last), UUID(last.order_id))
        )
    return found[:cap]


async def _current_board(reads: BoardReads, query: ListQuery) -> list[Summary]:
    """The orders in the filter's status (or in any status but a terminal one), oldest first."""
    found: list[Summary] = []
    for status in (query.status,) if query.status is not None else _ON_BOARD:
        status_query = dataclasses.replace(query, status=status)
        found += await _newest_first(reads, status_query, None, BOARD_MAX_ORDERS)
    found.sort(key=lambda s: (_updated_at(s), s.order_id), reverse=True)
    return found[:BOARD_MAX_ORDERS][::-1]


async def _changed_since(reads: BoardReads, query: ListQuery, since: datetime) -> list[Summary]:
    """Every order of the restaurant changed since `since`, whatever its status, oldest first."""
    every_status = dataclasses.replace(query, status=None)
    return (await _newest_first(reads, every_status, since, BOARD_MAX_ORDERS))[::-1]


def _resume_point(query: ListQuery, token: str, tokens: ResumeTokens) -> datetime | None:
    if not token:
        return None
    try:
        return tokens.decode(query, token, purpose=TOKEN_PURPOSE).updated_at
    except ValueError as error:  # read.page_token.InvalidPageToken
        raise InvalidInput(
            f"invalid resume_token: {error}",
            violations=(FieldViolation("resume_token", str(error)),),
        ) from error


async def stream_board(
    query: ListQuery,
    resume_token: str,
    *,
    hub: WatchHub,
    reads: BoardReads,
    tokens: ResumeTokens,
    send: Callable[[pb.WatchRestaurantOrdersResponse], Awaitable[None]],
) -> None:
    """Sends the board (or the changes since `resume_token`), then every change, until the
    caller cancels; raises WatchInterrupted when this replica cannot go on."""
    since = _resume_point(query, resume_token, tokens)
    wanted = None if query.status is None else wire.status_to_proto(query.status)
    push = Pusher(RESTAURANT, send)

    def token_at(watermark: datetime) -> str:
        cursor = PageCursor(watermark, query.owner_id)
        return tokens.encode(query, cursor, purpose=TOKEN_PURPOSE)

    with hub.subscribe(RESTAURANT, str(query.owner_id), _accepts(wanted)) as subscription:
        started = datetime.now(UTC)
        first: Sequence[Summary]
        if since is None:
            first = await _current_board(reads, query)
        else:
            first = await _changed_since(reads, query, since - RESUME_OVERLAP)
        sent = _SentVersions()
        if since is None:
            for recent in await _changed_since(reads, query, started - RESUME_OVERLAP):
                sent.note(recent)
        for order in first:
            sent.note(order)
            initial = pb.WatchRestaurantOrdersResponse(order=order, resume_token=resume_token)
            await push(initial, None)
        watermark = started
        await push(
            pb.WatchRestaurantOrdersResponse(caught_up=True, resume_token=token_at(watermark)),
            None,
        )
        while True:
            for change in await subscription.changes():
                summary = change.summary
                assert summary is not None  # _accepts leaves removals out
                previous = sent.get(change.order_id)
                if not change.corrected and previous is not None and summary.version <= previous:
                    continue
                skipped = 0
                if previous is not None and not change.corrected:
                    skipped = summary.version - previous - 1
                watermark = max(watermark, _updated_at(summary))
                sent.note(summary)
                await push(
                    pb.WatchRestaurantOrdersResponse(
                        order=summary,
                        skipped_versions=skipped,
                        resume_token=token_at(watermark),
                        corrected=change.corrected,
                    ),
                    change.committed_at,
                )
