"""Page tokens across a change of the serving tier, both ways, with page boundaries inside
groups of orders whose `updated_at` is the same microsecond.

Lists run newest first by (updated_at, order_id). PostgreSQL breaks ties by order id; a
DynamoDB GSI sorts only by its range key (`updatedAt`) and leaves the order of ties
unspecified. moto happens to order them by the table's hash key, which agrees with PostgreSQL,
so each test runs twice: against moto as it is, and through a proxy whose index orders ties
another way (tests/support/dynamodb_proxy.py), as DynamoDB may.

The serving tier is switched by pausing the test's own DynamoDB endpoint (SIGSTOP: the tier
times out, its breaker opens, PostgreSQL serves) and resuming it (the breaker's probe
succeeds, DynamoDB serves again).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.integration.pipeline import use_stack_credentials
from tests.integration.projector_support import dynamodb, unique
from tests.support.dynamodb_proxy import DynamoDBProxy, GsiTieOrder
from uoom_orders.application.handlers import create_order
from uoom_orders.bootstrap import running_service
from uoom_orders.config import Settings
from uoom_orders.domain.commands import CreateOrder
from uoom_orders.domain.order import DeliveryLocation, OrderItem
from uoom_orders.dynamodb import create_tables, items
from uoom_orders.dynamodb.tables import CUSTOMER_INDEX, RESTAURANT_INDEX
from uoom_orders.projector import Reconciler
from uoom_orders.write.unit_of_work import PostgresUnitOfWork
from uoom_orders_client import OrderServiceClient, order_service_pb2
from uoom_orders_devstack import StackEndpoints
from uoom_orders_devstack.dynamodb_endpoint import MotoDynamoDBServer
from uoom_orders_devstack.ports import free_port

PAGE_SIZE = 3
DEADLINE_SECONDS = 10.0
DYNAMODB, POSTGRES = "dynamodb", "postgres"
CUSTOMER, RESTAURANT = "customer", "restaurant"
ListPage = (
    order_service_pb2.ListOrdersByCustomerResponse
    | order_service_pb2.ListOrdersByRestaurantResponse
)
# Recent: a reconciliation pass walks the orders changed within the items' TTL (72 h).
T0 = datetime.now(UTC).replace(second=0, microsecond=250_001) - timedelta(hours=3)
# Newest first: a group of 7 orders updated in the same microsecond, then one of 8, then 4
# orders each at its own time. With pages of 3, boundaries fall inside both groups.
TIE_GROUPS = [(T0, 7), (T0 - timedelta(microseconds=1), 8)] + [
    (T0 - timedelta(minutes=n), 1) for n in range(1, 5)
]


@dataclass
class Lists:
    client: OrderServiceClient
    moto: MotoDynamoDBServer
    owner: dict[str, str]  # scope → the customer's or the restaurant's id
    expected: list[str]  # every order id, in the order PostgreSQL lists them
    updated_at: dict[str, datetime]


@pytest.fixture(scope="module")
def private_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoDynamoDBServer]:
    """A DynamoDB endpoint of this module's own, to pause without touching others'; each test
    has its own tables on it."""
    server = MotoDynamoDBServer(free_port(), tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    yield server
    server.stop()


def _fixed(at: datetime) -> Callable[[], datetime]:
    return lambda: at


async def _place_tied_orders(pool: asyncpg.Pool, customer: uuid.UUID, restaurant: uuid.UUID) -> int:
    """Orders through the real write path, with a clock that repeats each group's instant."""
    instants = iter([at for at, count in TIE_GROUPS for _ in range(count)])
    placed = 0
    for at in instants:
        await create_order(
            CreateOrder(
                request_id=uuid.uuid4(),
                fingerprint=b"create",
                customer_id=customer,
                restaurant_id=restaurant,
                channel_id="default-channel",
                currency_code="EUR",
                items=(OrderItem("pizza", "Pizza", 1, 1250),),
                delivery_location=DeliveryLocation(
                    52.520008, 13.404954, "Unter den Linden 1", "Berlin", "10117"
                ),
                estimated_delivery_time=None,
            ),
            lambda: PostgresUnitOfWork(pool),
            clock=_fixed(at),
        )
        placed += 1
    return placed


@pytest.fixture(params=["moto-tie-order", "unspecified-tie-order"])
async def lists(
    request: pytest.FixtureRequest,
    local_stack: StackEndpoints,
    database_url: str,
    private_moto: MotoDynamoDBServer,
) -> AsyncIterator[Lists]:
    """Tied orders in PostgreSQL, rebuilt into the private endpoint's tables, and an API that
    reads them through DynamoDB (moto itself, or the proxy with its own tie order)."""
    use_stack_credentials(local_stack)
    customer, restaurant = uuid.uuid4(), uuid.uuid4()
    prefix = unique("ties") + "-"
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        placed = await _place_tied_orders(pool, customer, restaurant)
        rows = await pool.fetch(
            "SELECT order_id, updated_at FROM orders WHERE customer_id = $1"
            " ORDER BY updated_at DESC, order_id DESC",
            customer,
        )
        async with dynamodb(replace(local_stack, dynamodb_endpoint=private_moto.endpoint)) as ddb:
            await create_tables(ddb, prefix)
            report = await Reconciler(pool, ddb, prefix).run()
        assert report.checked == placed == len(rows)
        assert report.repaired == 2 * placed
    finally:
        await pool.close()

    async with AsyncExitStack() as stack:
        endpoint = private_moto.endpoint
        if request.param == "unspecified-tie-order":
            index_keys = {
                CUSTOMER_INDEX: (items.CUSTOMER_ID, items.UPDATED_AT),
                RESTAURANT_INDEX: (items.RESTAURANT_ID, items.UPDATED_AT),
            }
            proxy = DynamoDBProxy(endpoint, {"Query": GsiTieOrder(index_keys)})
            endpoint = (await stack.enter_async_context(proxy)).endpoint
        settings = Settings.from_env(
            local_stack.env()
            | {
                "DATABASE_URL": database_url,
                "GRPC_HOST": "127.0.0.1",
                "GRPC_PORT": "0",
                "SHUTDOWN_GRACE_SECONDS": "1",
                "PAGE_TOKEN_SECRET": "pagination-ties-test-page-token-key",
                "DYNAMODB_ENDPOINT": endpoint,
                "DYNAMODB_TABLE_PREFIX": prefix,
                "READ_TIERS": "dynamodb",
                # A paused endpoint costs one short timeout, then the breaker skips it; a
                # resumed one is probed again soon after.
                "READ_TIER_TIMEOUT_MS": "300",
                "BREAKER_FAILURE_THRESHOLD": "1",
                "BREAKER_RESET_SECONDS": "0.2",
            }
        )
        service = await stack.enter_async_context(running_service(settings, ("api",)))
        client = await stack.enter_async_context(
            OrderServiceClient(
                f"127.0.0.1:{service.port}", default_timeout=10, session_guarantees=False
            )
        )
        # Unwound first: the endpoint runs again before anything closes, whatever the test did.
        stack.callback(private_moto.resume)
        yield Lists(
            client,
            private_moto,
            {CUSTOMER: str(customer), RESTAURANT: str(restaurant)},
            # The restaurant's orders are the customer's: one expected order for both lists.
            [str(row["order_id"]) for row in rows],
            {str(row["order_id"]): row["updated_at"] for row in rows},
        )


async def _page(lists: Lists, scope: str, token: str, tier: str) -> ListPage:
    """The page at `token`, served by `tier`. DynamoDB is paused for PostgreSQL to serve and
    resumed for DynamoDB to serve; the same token is asked again until the wanted tier
    answers (a page token may be used any number of times)."""
    if tier == POSTGRES:
        lists.moto.pause()
    else:
        lists.moto.resume()
    owner = lists.owner[scope]
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        page: ListPage
        if scope == CUSTOMER:
            page, info = await lists.client.list_orders_by_customer_with_metadata(
                order_service_pb2.ListOrdersByCustomerRequest(
                    customer_id=owner, page_size=PAGE_SIZE, page_token=token
                )
            )
        else:
            page, info = await lists.client.list_orders_by_restaurant_with_metadata(
                order_service_pb2.ListOrdersByRestaurantRequest(
                    restaurant_id=owner, page_size=PAGE_SIZE, page_token=token
                )
            )
        if info.served_by == tier:
            return page
        if time.monotonic() >= deadline:
            raise AssertionError(f"{tier} never served the page (last: {info.served_by})")
        await asyncio.sleep(0.05)


def alternate(first: str, second: str) -> Callable[[int], str]:
    return lambda n: first if n % 2 == 0 else second


async def walk(lists: Lists, scope: str, plan: Callable[[int], str]) -> list[list[str]]:
    """Every page of the list, the n-th served by `plan(n)`; returns the pages' order ids."""
    pages: list[list[str]] = []
    token = ""
    for n in range(len(lists.expected)):  # more pages than orders: a token loops
        page = await _page(lists, scope, token, plan(n))
        pages.append([o.order_id for o in page.orders])
        token = page.next_page_token
        if not token:
            return pages
    raise AssertionError(f"no end after {len(pages)} pages: {pages}")


def switches_inside_tie_groups(
    lists: Lists, pages: list[list[str]], plan: Callable[[int], str]
) -> set[tuple[str, str]]:
    """The tier changes (from, to) at page boundaries that split a group of tied orders."""
    found = set()
    for n in range(len(pages) - 1):
        last, first = pages[n][-1], pages[n + 1][0]
        if plan(n) != plan(n + 1) and lists.updated_at[last] == lists.updated_at[first]:
            found.add((plan(n), plan(n + 1)))
    return found


async def test_pages_from_dynamodb_alone_list_each_order_once_in_order(lists: Lists) -> None:
    for scope in (CUSTOMER, RESTAURANT):
        pages = await walk(lists, scope, lambda _: DYNAMODB)
        assert [o for page in pages for o in page] == lists.expected, scope
        assert all(len(page) == PAGE_SIZE for page in pages[:-1]), scope


async def test_pages_alternating_between_tiers_list_each_order_once_in_order(
    lists: Lists,
) -> None:
    walks = [
        (CUSTOMER, alternate(DYNAMODB, POSTGRES)),
        (RESTAURANT, alternate(POSTGRES, DYNAMODB)),
    ]
    for scope, plan in walks:
        pages = await walk(lists, scope, plan)
        # The boundaries under test exist: a switch each way inside a group of ties.
        assert switches_inside_tie_groups(lists, pages, plan) == {
            (DYNAMODB, POSTGRES),
            (POSTGRES, DYNAMODB),
        }, scope
        seen = [o for page in pages for o in page]
        assert len(seen) == len(set(seen)), f"{scope}: an order was listed twice"
        assert seen == lists.expected, scope  # newest first, ties by order id, none skipped
