"""Bad input as a demanding user sends it, through a gRPC channel with default options (no help
from our client): every INVALID_ARGUMENT carries field violations and fits the default metadata
limits, ids have one spelling, and what a caller provokes at will is a count and at most one
log line, never a traceback."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
from google.protobuf.message import Message
from prometheus_client import REGISTRY
from uoom.orders.v1 import order_pb2, order_service_pb2

from tests.builders import NEW_YORK, PIZZA, create_request, update_request
from tests.integration.projector_support import eventually
from tests.support.held_writes import outbox_locked
from tests.support.rich_errors import RichError, rich_error
from tests.support.write_model_invariants import write_model_problems
from uoom_orders.api.status_mapping import ERROR_BUDGET_BYTES, MAX_FIELD_VIOLATIONS
from uoom_orders.bootstrap import running_service
from uoom_orders.config import Settings

SERVICE = "uoom.orders.v1.OrderService"
METHODS = {m.name for m in order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].methods}


@pytest.fixture
async def channel(settings: Settings) -> AsyncIterator[grpc.aio.Channel]:
    """A plain channel with gRPC's default options to the service in process."""
    async with (
        running_service(settings) as service,
        grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
    ):
        yield channel


async def call(
    channel: grpc.aio.Channel, method: str, request: Message | bytes, timeout: float = 10
) -> bytes | RichError:
    """The raw response, or the error as any client decodes it."""
    payload = request if isinstance(request, bytes) else request.SerializeToString()
    try:
        method_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            f"/{SERVICE}/{method}"
        )
        reply = await method_call(payload, timeout=timeout)
    except grpc.aio.AioRpcError as error:
        return rich_error(error)
    return reply


def invalid(outcome: bytes | RichError) -> RichError:
    """`outcome` as an INVALID_ARGUMENT that names at least one field and fits the limits."""
    assert isinstance(outcome, RichError), "the request was accepted"
    assert outcome.code is grpc.StatusCode.INVALID_ARGUMENT, outcome
    assert outcome.reason, outcome
    assert 1 <= len(outcome.violations) <= MAX_FIELD_VIOLATIONS, outcome
    assert outcome.size <= ERROR_BUDGET_BYTES, outcome.size
    return outcome


def items_like(count: int, **fields: object) -> list[order_pb2.OrderItem]:
    item = order_pb2.OrderItem()
    item.CopyFrom(PIZZA)
    for name, value in fields.items():
        if isinstance(value, Message):
            getattr(item, name).CopyFrom(value)
        else:
            setattr(item, name, value)
    return [item] * count


def huge_currency() -> list[order_pb2.OrderItem]:
    euro = items_like(1, unit_price=order_pb2.Money(currency_code="EUR", amount_minor=1))
    mib = items_like(1, unit_price=order_pb2.Money(currency_code="X" * 2**20, amount_minor=1))
    return euro + mib


WORST = {
    # The cases: 17 KB and 29 KB of error metadata, and 3 MB for the currency.
    "100 items with quantity 0": items_like(100, quantity=0),
    "100 items with every field empty": [order_pb2.OrderItem()] * 100,
    "a 1 MiB currency code": huge_currency(),
    "100 items of long non-ASCII text": items_like(
        100, item_id="\u00e9" * 3000, name="\U0001f355" * 2000, quantity=-1
    ),
}


@pytest.mark.parametrize("case", sorted(WORST))
async def test_the_worst_bad_requests_get_their_violations_through_a_default_channel(
    channel: grpc.aio.Channel, case: str
) -> None:
    request = create_request(items=WORST[case])
    request.delivery_location.postal_code = "\x00" * 10_000
    error = invalid(await call(channel, "CreateOrder", request))
    assert error.size < 4 * 1024
    if int(error.metadata.get("field_violations", "0")) > MAX_FIELD_VIOLATIONS:
        assert len(error.violations) == MAX_FIELD_VIOLATIONS
        omitted = int(error.metadata["field_violations_omitted"])
        assert omitted == int(error.metadata["field_violations"]) - MAX_FIELD_VIOLATIONS


async def test_a_reused_request_id_is_a_violation_on_request_id(
    channel: grpc.aio.Channel,
) -> None:
    request_id = str(uuid.uuid4())
    created = await call(channel, "CreateOrder", create_request(request_id=request_id))
    assert isinstance(created, bytes)
    order = order_service_pb2.CreateOrderResponse.FromString(created).order

    other = create_request(request_id=request_id)  # other customer and restaurant
    error = invalid(await call(channel, "CreateOrder", other))
    assert error.reason == "REQUEST_ID_REUSED"
    assert [field for field, _ in error.violations] == ["request_id"]

    move = update_request(order.order_id, order_pb2.ORDER_STATUS_CONFIRMED, request_id=request_id)
    error = invalid(await call(channel, "UpdateOrderStatus", move))
    assert error.reason == "REQUEST_ID_REUSED"
    assert [field for field, _ in error.violations] == ["request_id"]


async def test_every_invalid_argument_of_every_rpc_names_its_fields(
    channel: grpc.aio.Channel,
) -> None:
    """AIP-193, over all RPCs: each kind of bad input a method can get."""
    created = await call(channel, "CreateOrder", create_request())
    assert isinstance(created, bytes)
    order = order_service_pb2.CreateOrderResponse.FromString(created).order
    reused = create_request(request_id=str(uuid.uuid4()))
    assert isinstance(await call(channel, "CreateOrder", reused), bytes)
    undecodable = b"\x0a\x02\xc3\x28"  # field 1 as a string of invalid UTF-8
    cases: list[tuple[str, Message | bytes]] = [
        ("CreateOrder", order_service_pb2.CreateOrderRequest()),
        ("CreateOrder", create_request(request_id=reused.request_id)),
        ("CreateOrder", create_request(customer_id=order.customer_id.upper())),
        ("UpdateOrderStatus", order_service_pb2.UpdateOrderStatusRequest()),
        ("UpdateOrderStatus", update_request(order.order_id, 99)),
        ("UpdateOrderStatus", update_request(order.order_id, 2, request_id=reused.request_id)),
        ("UpdateOrderStatus", update_request(order.order_id, 2, expected_version=-1)),
        ("GetOrderStatus", order_service_pb2.GetOrderStatusRequest()),
        ("GetOrderStatus", order_service_pb2.GetOrderStatusRequest(order_id="{x}")),
        (
            "GetOrderStatus",
            order_service_pb2.GetOrderStatusRequest(order_id=order.order_id, min_version=-1),
        ),
        ("BatchGetOrderStatus", order_service_pb2.BatchGetOrderStatusRequest()),
        (
            "BatchGetOrderStatus",
            order_service_pb2.BatchGetOrderStatusRequest(order_ids=[order.order_id] * 101),
        ),
        ("GetOrderDetails", order_service_pb2.GetOrderDetailsRequest(order_id=" ")),
        ("ListOrdersByCustomer", order_service_pb2.ListOrdersByCustomerRequest()),
        (
            "ListOrdersByCustomer",
            order_service_pb2.ListOrdersByCustomerRequest(
                customer_id=order.customer_id, page_token="forged"
            ),
        ),
        (
            "ListOrdersByRestaurant",
            order_service_pb2.ListOrdersByRestaurantRequest(
                restaurant_id=order.restaurant_id,
                page_size=-1,
                status_filter=42,  # type: ignore[arg-type]
            ),
        ),
    ] + [(method, undecodable) for method in sorted(METHODS)]
    assert {method for method, _ in cases} == METHODS
    for method, request in cases:
        outcome = await call(channel, method, request)
        assert isinstance(outcome, RichError), (method, request)
        invalid(outcome)


async def test_missing_ids_are_answered_as_sent_and_other_spellings_are_refused(
    channel: grpc.aio.Channel,
) -> None:
    created = await call(channel, "CreateOrder", create_request())
    assert isinstance(created, bytes)
    order = order_service_pb2.CreateOrderResponse.FromString(created).order
    absent = [str(uuid.uuid4()), str(uuid.uuid4())]
    ids = [absent[0], order.order_id, absent[1], absent[0]]
    reply = await call(
        channel, "BatchGetOrderStatus", order_service_pb2.BatchGetOrderStatusRequest(order_ids=ids)
    )
    assert isinstance(reply, bytes)
    answer = order_service_pb2.BatchGetOrderStatusResponse.FromString(reply)
    assert [o.order_id for o in answer.orders] == [order.order_id]
    assert list(answer.missing_order_ids) == absent

    canonical = order.order_id
    for spelling in (
        canonical.upper(),
        "{" + canonical + "}",
        "urn:uuid:" + canonical,
        canonical.replace("-", ""),
        canonical.replace("4", "\uff14"),  # full-width digit four (the version digit)
    ):
        request = order_service_pb2.BatchGetOrderStatusRequest(order_ids=[canonical, spelling])
        error = invalid(await call(channel, "BatchGetOrderStatus", request))
        assert [field for field, _ in error.violations] == ["order_ids[1]"]
        error = invalid(
            await call(
                channel,
                "GetOrderStatus",
                order_service_pb2.GetOrderStatusRequest(order_id=spelling),
            )
        )
        assert [field for field, _ in error.violations] == ["order_id"]


def _sample(name: str, method: str) -> float:
    return REGISTRY.get_sample_value(name, {"method": method}) or 0.0


async def test_undecodable_requests_are_counted_and_logged_once_without_a_traceback(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = _sample("grpc_server_malformed_requests_total", "CreateOrder")
    garbage = [b"\xff" * n for n in range(1, 20)] + [b"\x0a\x02\xc3\x28", b"\x2a\x10" + b"x"]
    for payload in garbage:
        error = invalid(await call(channel, "CreateOrder", payload))
        assert error.reason == "MALFORMED_REQUEST"
        assert error.violations[0][0] == ""  # the whole request
    after = _sample("grpc_server_malformed_requests_total", "CreateOrder")
    assert after - before == len(garbage)
    warnings = [r for r in caplog.records if "is not a uoom.orders.v1" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert warnings[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_cancelled_calls_are_counted_logged_at_most_once_and_write_nothing_half(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture, db: asyncpg.Connection
) -> None:
    """Deadlines cut creates off at every stage, even mid-COMMIT: no error log, no traceback,
    no half-written order (asyncpg's "Resetting connection with an active transaction" was
    one)."""
    caplog.set_level(logging.DEBUG)
    before = sum(_sample("grpc_server_cancelled_total", m) for m in METHODS)
    cut_off = 0
    started = time.monotonic()
    # Which calls a deadline cuts off, and at which stage, depends on the machine's speed and
    # load: try until 40 were...
    for attempt in range(2000):
        outcome = await call(
            channel, "CreateOrder", create_request(), timeout=0.0005 + (attempt % 40) * 0.0001
        )
        if isinstance(outcome, RichError):
            assert outcome.code is grpc.StatusCode.DEADLINE_EXCEEDED, outcome
            cut_off += 1
        if cut_off >= 40:
            break
    # ... and on a machine fast enough to beat most of them (gRPC enforces a deadline of a
    # fraction of a millisecond late: 24 of 4,000 cut off on one), the rest are held inside
    # PostgreSQL until their deadline cuts them off there, mid-statement.
    async with outbox_locked(db):
        while cut_off < 40:
            outcome = await call(channel, "CreateOrder", create_request(), timeout=0.05)
            assert isinstance(outcome, RichError), "a create went through a locked outbox"
            assert outcome.code is grpc.StatusCode.DEADLINE_EXCEEDED, outcome
            cut_off += 1
    # The log's rate limit is a line per kind per 10 s: a long loop may earn a second.
    allowed_per_kind = 1 + int((time.monotonic() - started) // 10)

    def counted() -> bool:
        return sum(_sample("grpc_server_cancelled_total", m) for m in METHODS) > before

    await eventually(counted, "the server to count a cancelled call", timeout=5)
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert problems == []
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    kinds = ("call cancelled before", "left before its answer", "cancel request to PostgreSQL")
    for kind in kinds:  # each at most once per 10 s (rate-limited)
        assert len([line for line in lines if kind in line]) <= allowed_per_kind, lines
    assert len(lines) == len([line for line in lines if any(k in line for k in kinds)]), lines
    assert await write_model_problems(db) == []


async def test_the_readme_location_without_postal_code_names_the_field(
    channel: grpc.aio.Channel,
) -> None:
    """The client README's first example once failed like this; the message says why."""
    location = order_pb2.DeliveryLocation()
    location.CopyFrom(NEW_YORK)
    location.ClearField("postal_code")
    request = create_request()
    request.delivery_location.CopyFrom(location)
    error = invalid(await call(channel, "CreateOrder", request))
    assert error.violations == [("delivery_location.postal_code", error.violations[0][1])]
    assert "postal_code" in error.message
