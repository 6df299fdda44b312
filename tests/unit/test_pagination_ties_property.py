"""Property: paging through a list, with the serving tier chosen anew for every page, lists
each order once, newest first by (updated_at, order_id), whatever order a DynamoDB index
gives to orders with the same `updatedAt` and however it splits its answers into pages.

The DynamoDB tier is the real ItemReadStore over `FakeGsi`, an in-memory Query on a global
secondary index (key condition, Limit counted before the filter, LastEvaluatedKey, a tie order
drawn by the test); PostgreSQL is `FakePostgres`, keyset-paginated on (updated_at, order_id).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st
from uoom.orders.v1 import order_pb2

from uoom_orders.application.queries import OrderQueries
from uoom_orders.domain.order import OrderStatus
from uoom_orders.dynamodb import items
from uoom_orders.dynamodb.tables import TableNames
from uoom_orders.read.item_store import ItemReadStore
from uoom_orders.read.page_token import PageTokenCodec
from uoom_orders.read.ports import ListQuery, ListScope
from uoom_orders.read.tiers import ReadPath, Tier

T0 = datetime(2024, 1, 15, 13, 0, 0, 250_001, tzinfo=UTC)
NOW = T0.timestamp() + 3600
CUSTOMER = uuid.UUID(int=1)
STATUSES = (OrderStatus.PENDING, OrderStatus.CONFIRMED)
_PROTO_STATUS = {
    OrderStatus.PENDING: order_pb2.ORDER_STATUS_PENDING,
    OrderStatus.CONFIRMED: order_pb2.ORDER_STATUS_CONFIRMED,
}


class TierDown(Exception):
    pass


class FakeGsi:
    """DynamoDB's Query on a GSI, for the expressions ItemReadStore sends (anything else fails
    the test). Items with the same range key come in the order of `tie_rank`."""

    def __init__(self, rows: list[items.Item], tie_rank: dict[str, int], page_cap: int) -> None:
        self._rows = rows
        self._tie_rank = tie_rank
        self._page_cap = page_cap  # at most this many items evaluated per call (like 1 MB)
        self.down = False

    def _position(self, item: dict[str, Any]) -> tuple[str, int]:
        return item[items.UPDATED_AT]["S"], self._tie_rank[item[items.ORDER_ID]["S"]]

    async def query(self, **request: Any) -> dict[str, Any]:
        if self.down:
            raise TierDown("dynamodb is down")
        assert request["ScanIndexForward"] is False
        names, values = request["ExpressionAttributeNames"], request["ExpressionAttributeValues"]
        owner = names["#owner"]
        rows = [r for r in self._rows if r[owner] == values[":owner"]]
        condition = request["KeyConditionExpression"]
        if condition == "#owner = :owner AND #updated <= :after":
            assert names["#updated"] == items.UPDATED_AT
            rows = [r for r in rows if r[items.UPDATED_AT]["S"] <= values[":after"]["S"]]
        else:
            assert condition == "#owner = :owner", condition
        rows.sort(key=self._position, reverse=True)
        start = request.get("ExclusiveStartKey")
        if start is not None:
            rows = [r for r in rows if self._position(r) < self._position(start)]
        evaluated = rows[: min(request["Limit"], self._page_cap)]
        reply: dict[str, Any] = {"Items": [r for r in evaluated if _passes(request, r)]}
        if len(evaluated) < len(rows) or len(evaluated) == request["Limit"]:
            last = evaluated[-1]
            reply["LastEvaluatedKey"] = {
                name: last[name] for name in (items.ORDER_ID, owner, items.UPDATED_AT)
            }
        return reply

    async def get_item(self, **request: Any) -> dict[str, Any]:
        raise NotImplementedError

    async def batch_get_item(self, **request: Any) -> dict[str, Any]:
        raise NotImplementedError


def _passes(request: dict[str, Any], row: items.Item) -> bool:
    names, values = request["ExpressionAttributeNames"], request["ExpressionAttributeValues"]
    for clause in request["FilterExpression"].split(" AND "):
        if clause == "(attribute_not_exists(#ttl) OR #ttl >= :now)":
            ttl = row.get(names["#ttl"])
            if ttl is not None and int(ttl["N"]) < int(values[":now"]["N"]):
                return False
        elif clause == "#status = :status":
            if row[names["#status"]] != values[":status"]:
                return False
        else:
            raise AssertionError(f"unexpected filter {clause!r}")
    return True


class FakePostgres:
    """The PostgreSQL store's list: (updated_at, order_id) < cursor, newest first."""

    name = "postgres"

    def __init__(self, orders: list[order_pb2.Order]) -> None:
        self._orders = orders
        self.down = False

    async def list_summaries(self, query: ListQuery) -> list[order_pb2.OrderSummary]:
        def key(order: order_pb2.Order) -> tuple[datetime, UUID]:
            return order.updated_at.ToDatetime(tzinfo=UTC), UUID(order.order_id)

        after = None if query.after is None else (query.after.updated_at, query.after.order_id)
        rows = sorted(
            (
                o
                for o in self._orders
                if UUID(o.customer_id) == query.owner_id
                and (query.status is None or o.status == _PROTO_STATUS[query.status])
                and (after is None or key(o) < after)
            ),
            key=key,
            reverse=True,
        )
        return [_summary(o) for o in rows[: query.limit]]

    async def get_summary(self, order_id: UUID) -> order_pb2.OrderSummary | None:
        raise NotImplementedError

    async def get_order(self, order_id: UUID) -> order_pb2.Order | None:
        raise NotImplementedError

    async def get_summaries(self, order_ids: Sequence[UUID]) -> dict[int, order_pb2.OrderSummary]:
        raise NotImplementedError


def _summary(order: order_pb2.Order) -> order_pb2.OrderSummary:
    return items.summary_from_item(items.status_item(order, int(NOW) + 3600))


@dataclass(frozen=True)
class Case:
    orders: list[order_pb2.Order]
    tie_order: list[int]  # a permutation of the orders' positions: the index's tie order
    page_cap: int
    page_size: int
    status: OrderStatus | None
    dynamodb_serves: list[bool]  # per page


def _order(order_id: UUID, minutes: int, status: OrderStatus) -> order_pb2.Order:
    updated = Timestamp()
    updated.FromDatetime(T0 - timedelta(minutes=minutes))
    return order_pb2.Order(
        order_id=str(order_id),
        status=_PROTO_STATUS[status],
        customer_id=str(CUSTOMER),
        restaurant_id=str(uuid.UUID(int=2)),
        channel_id="default-channel",
        total=order_pb2.Money(currency_code="EUR", amount_minor=1250),
        created_at=updated,
        updated_at=updated,
        version=1,
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    ids = draw(st.lists(st.uuids(), min_size=1, max_size=25, unique=True))
    # Three instants for up to 25 orders: ties everywhere.
    orders = [_order(i, draw(st.integers(0, 2)), draw(st.sampled_from(STATUSES))) for i in ids]
    return Case(
        orders=orders,
        tie_order=draw(st.permutations(range(len(orders)))),
        page_cap=draw(st.integers(1, 30)),
        page_size=draw(st.integers(1, 6)),
        status=draw(st.none() | st.sampled_from(STATUSES)),
        dynamodb_serves=draw(st.lists(st.booleans(), min_size=30, max_size=30)),
    )


async def _walk(case: Case) -> list[str]:
    rows = [items.status_item(o, int(NOW) + 3600) for o in case.orders]
    rank = {case.orders[p].order_id: n for n, p in enumerate(case.tie_order)}
    gsi = FakeGsi(rows, rank, case.page_cap)
    postgres = FakePostgres(case.orders)
    dynamodb = ItemReadStore(gsi, TableNames.for_prefix("p-"), name="dynamodb", clock=lambda: NOW)
    queries = OrderQueries(
        ReadPath([Tier(dynamodb)], Tier(postgres)), PageTokenCodec(b"property-test-key")
    )
    query = ListQuery(ListScope.CUSTOMER, CUSTOMER, case.status, case.page_size, None)
    seen: list[str] = []
    token = ""
    for serves in case.dynamodb_serves:
        gsi.down = not serves
        page = await queries.list_orders(query, token)
        assert page.served_by == ("dynamodb" if serves else "postgres")
        assert page.orders or not seen, "a page after the first was empty"
        seen.extend(o.order_id for o in page.orders)
        token = page.next_page_token
        if not token:
            return seen
    raise AssertionError("more pages than orders")


@settings(max_examples=200, deadline=None)
@given(cases())
def test_pages_list_each_order_once_in_order_whatever_the_tier_of_each_page(case: Case) -> None:
    wanted = [
        o for o in case.orders if case.status is None or o.status == _PROTO_STATUS[case.status]
    ]
    wanted.sort(key=lambda o: (o.updated_at.ToDatetime(), UUID(o.order_id)), reverse=True)
    assert asyncio.run(_walk(case)) == [o.order_id for o in wanted]
