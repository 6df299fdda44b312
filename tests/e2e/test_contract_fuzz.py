"""A property-based fuzz test of the contract, through the real service as a process.

Hostile requests to every RPC (structured values at and beyond every limit, other spellings of
ids, reused request ids, forged page tokens, and raw bytes), sent through a channel with gRPC's
default options, one at a time. For every one of them:

- a decodable request never gets INTERNAL or UNKNOWN (nor does an undecodable one: it gets
  INVALID_ARGUMENT, reason MALFORMED_REQUEST);
- only the codes the contract documents come back;
- every INVALID_ARGUMENT names at least one field;
- the error fits the default client's metadata limit (no RESOURCE_EXHAUSTED from the client);
- an order the service accepted is storable in both read-model tables;
and, along the way and at the end, the service stays SERVING, PostgreSQL holds nothing
half-written, and the service's log has no ERROR and no traceback.

A short run in CI (FUZZ_EXAMPLES, 150 by default); a long one by command, e.g.

    FUZZ_EXAMPLES=20000 pytest -p no:cacheprovider -s tests/e2e/test_contract_fuzz.py

which prints the number of cases and the status codes per method.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uoom.orders.v1 import order_pb2, order_service_pb2

from tests.e2e.conftest import StartService
from tests.e2e.full_service import start_full_service
from tests.support.dynamodb_limits import item_problems
from tests.support.error_size import DEFAULT_SOFT_LIMIT
from tests.support.rich_errors import RichError, rich_error
from tests.support.write_model_invariants import write_model_problems
from uoom_orders.api.grpc_server import MAX_MESSAGE_BYTES
from uoom_orders.dynamodb import items
from uoom_orders_devstack import StackEndpoints

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SERVICE = "uoom.orders.v1.OrderService"
METHODS = [m.name for m in order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].methods]
STREAMING = {
    m.name
    for m in order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].methods
    if m.server_streaming
}
# A watch answers its first message (or its error) at once, unless it waits for a version newer
# than the current one: then nothing comes, as documented, until its deadline.
WATCH_FIRST_MESSAGE_S = 2.0
REQUEST_TYPES: dict[str, type[Message]] = {
    m.name: getattr(order_service_pb2, m.input_type.name)
    for m in order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].methods
}
# What the contract answers; anything else (INTERNAL, UNKNOWN, UNAVAILABLE, a client-side
# RESOURCE_EXHAUSTED for oversized metadata...) is a finding.
DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED,
}
KEYS = (items.ORDER_ID, items.CUSTOMER_ID, items.RESTAURANT_ID, items.UPDATED_AT)
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


@dataclass
class Known:
    """Real orders, request ids and page tokens made before the run, for the fuzz to reuse."""

    order_ids: list[str]
    customer_id: str
    restaurant_id: str
    request_ids: list[str]
    page_tokens: list[str]


# --- hostile values ------------------------------------------------------------------------
def id_spellings(canonical: str) -> list[str]:
    return [
        canonical,
        canonical.upper(),
        "{" + canonical + "}",
        "urn:uuid:" + canonical,
        canonical.replace("-", ""),
        f" {canonical} ",
        canonical.replace("4", "\uff14"),
        canonical + "\x00",
    ]


def ids(known: list[str]) -> st.SearchStrategy[str]:
    fresh = st.uuids().map(str)
    choices = [
        fresh,
        fresh.flatmap(lambda i: st.sampled_from(id_spellings(i))),
        st.just(""),
        hostile_text(),
    ]
    if known:
        choices += [
            st.sampled_from(known),
            st.sampled_from(known).flatmap(lambda i: st.sampled_from(id_spellings(i))),
        ]
    return st.one_of(*choices)


def hostile_text(max_size: int = 300, *, huge: bool = False) -> st.SearchStrategy[str]:
    texts = [
        st.text(max_size=max_size),  # any code point but lone surrogates
        st.text(st.characters(codec="ascii"), max_size=max_size),
        st.sampled_from(["", " ", "\t\n", "\x00", "\u200b", "\ufeff", "\u202e", "\x85"]),
        st.integers(0, 600).map(lambda n: "\U0001f355" * n),
    ]
    if huge:
        texts.append(st.just("X" * 2**20))  # 1 MiB, the currency code
    return st.one_of(*texts)


def int_values(bounds: tuple[int, int], *edges: int) -> st.SearchStrategy[int]:
    low, high = bounds
    special = [v for v in (low, high, -1, 0, 1, *edges) if low <= v <= high]
    return st.one_of(st.sampled_from(special), st.integers(low, high))


def floats() -> st.SearchStrategy[float]:
    return st.one_of(
        st.floats(),
        st.sampled_from(
            [0.0, -0.0, 1e-300, 5e-324, 1e-130, 1e-9, 90.0, 90.00000000000001, 180.0, -180.0]
        ),
        st.floats(-180, 180),
    )


def timestamps(now: int) -> st.SearchStrategy[Timestamp | None]:
    """Unset, valid future times, and any (seconds, nanos) pair at all. `now` is fixed when the
    strategies are built: a strategy whose bounds move between cases is flaky."""
    return st.one_of(
        st.none(),
        st.builds(Timestamp, seconds=st.integers(now + 60, 253_402_300_799)),
        st.builds(
            Timestamp,
            seconds=int_values(INT64, now, now - 1, 253_402_300_799, 253_402_300_800),
            nanos=int_values(INT32, 999_999_999, 1_000_000_000),
        ),
    )


def money() -> st.SearchStrategy[order_pb2.Money]:
    return st.builds(
        order_pb2.Money,
        currency_code=st.one_of(
            st.sampled_from(["USD", "EUR", "usd", "\uff35SD"]), hostile_text(huge=True)
        ),
        amount_minor=int_values(INT64, 10_000_000, 10_000_001),
    )


def valid_items() -> st.SearchStrategy[list[order_pb2.OrderItem]]:
    item = st.builds(
        order_pb2.OrderItem,
        item_id=st.sampled_from(["pizza", " pizza ", "x" * 100, "caf\u00e9-1"]),
        name=st.sampled_from(["Pizza", "Caf\u00e9 cr\u00e8me", "n" * 200, "\U0001f355"]),
        quantity=st.integers(1, 1000),
        unit_price=st.builds(
            order_pb2.Money, currency_code=st.just("USD"), amount_minor=st.integers(0, 10**7)
        ),
    )
    return st.lists(item, min_size=1, max_size=5)


def hostile_item() -> st.SearchStrategy[order_pb2.OrderItem]:
    return st.builds(
        order_pb2.OrderItem,
        item_id=hostile_text(),
        name=hostile_text(),
        quantity=int_values(INT32, 1000, 1001),
        unit_price=st.one_of(st.none(), money()),
        total_price=st.one_of(st.none(), money()),
    )


def valid_location() -> st.SearchStrategy[order_pb2.DeliveryLocation]:
    return st.builds(
        order_pb2.DeliveryLocation,
        latitude=st.floats(-90, 90),
        longitude=st.floats(-180, 180),
        address=st.sampled_from(["Main St 1", " Unter den Linden 77 ", "a" * 500]),
        city=st.sampled_from(["Berlin", "K\u00f8benhavn"]),
        postal_code=st.sampled_from(["10115", "1" * 20]),
    )


def set_field(message: Message, path: str, value: object) -> None:
    """Sets `path` ("delivery_location.latitude", "items"); None clears a message field."""
    *parents, name = path.split(".")
    target: Any = message
    for parent in parents:
        target = getattr(target, parent)
    if value is None:
        target.ClearField(name)
    elif isinstance(value, list):
        del getattr(target, name)[:]
        getattr(target, name).extend(value)
    elif isinstance(value, Message):
        getattr(target, name).CopyFrom(value)
    else:
        setattr(target, name, value)


Mutations = dict[str, st.SearchStrategy[Any]]
# Each request starts valid, and half of them get 1..3 fields replaced by hostile values: every
# code path (success, each refusal, each lifecycle error) sees traffic, not only the validator.
MUTATE = st.booleans()


@st.composite
def mutated(draw: st.DrawFn, request: Message, mutations: Mutations) -> None:
    """Replaces 1..3 of the request's fields (in place) by hostile values."""
    paths = draw(st.lists(st.sampled_from(sorted(mutations)), min_size=1, max_size=3))
    for path in dict.fromkeys(paths):
        set_field(request, path, draw(mutations[path]))


# Stands for "the order this run created last", resolved when the request is sent: the known
# orders soon reach a final status, and updates and reads need live orders too.
RECENT = "recent-order"


def resolve_recent(request: Message | bytes, recent: list[str]) -> None:
    if isinstance(request, bytes) or not recent:
        return
    if getattr(request, "order_id", None) == RECENT:
        request.order_id = recent[-1]  # type: ignore[attr-defined]
    if isinstance(request, order_service_pb2.BatchGetOrderStatusRequest):
        resolved = [recent[-1] if i == RECENT else i for i in request.order_ids]
        del request.order_ids[:]
        request.order_ids.extend(resolved)


def requests(known: Known) -> st.SearchStrategy[tuple[str, Message | bytes]]:
    # A new request id for each request that should succeed: hypothesis repeats its values
    # (the nil UUID first), which would make most creates REQUEST_ID_REUSED.
    new_request_id = st.builds(lambda: str(uuid.uuid4()))
    request_ids = st.one_of(st.sampled_from(known.request_ids), ids([]))
    now = int(time.time())
    future = st.builds(Timestamp, seconds=st.integers(now + 3600, 253_402_300_799))
    times = timestamps(now)
    any_items = st.lists(st.one_of(hostile_item(), valid_items().map(lambda i: i[0])), max_size=105)
    some_ids = st.sampled_from([*known.order_ids, str(uuid.uuid4()), RECENT, RECENT])

    @st.composite
    def create(draw: st.DrawFn) -> tuple[str, Message]:
        request = order_service_pb2.CreateOrderRequest(
            request_id=draw(new_request_id),
            customer_id=draw(st.sampled_from([known.customer_id, str(uuid.uuid4())])),
            restaurant_id=draw(st.sampled_from([known.restaurant_id, str(uuid.uuid4())])),
            channel_id=draw(st.sampled_from(["", "web", "app.v2_beta-1"])),
            items=draw(valid_items()),
            delivery_location=draw(valid_location()),
            estimated_delivery_time=draw(st.one_of(st.none(), future)),
        )
        if draw(MUTATE):
            draw(
                mutated(
                    request,
                    {
                        "request_id": request_ids,
                        "customer_id": ids([known.customer_id]),
                        "restaurant_id": ids([known.restaurant_id]),
                        "channel_id": hostile_text(120),
                        "items": any_items,
                        "delivery_location": st.one_of(st.none(), valid_location()),
                        "delivery_location.latitude": floats(),
                        "delivery_location.longitude": floats(),
                        "delivery_location.address": hostile_text(600),
                        "delivery_location.city": hostile_text(),
                        "delivery_location.postal_code": hostile_text(30),
                        "estimated_delivery_time": times,
                    },
                )
            )
        return "CreateOrder", request

    @st.composite
    def update(draw: st.DrawFn) -> tuple[str, Message]:
        request = order_service_pb2.UpdateOrderStatusRequest(
            request_id=draw(new_request_id),
            order_id=draw(st.sampled_from([*known.order_ids, RECENT, RECENT, RECENT])),
            status=draw(st.integers(1, 7)),  # type: ignore[arg-type]
            expected_version=draw(st.sampled_from([0, 0, 0, 1, 2, 3, 4])),
        )
        if draw(MUTATE):
            draw(
                mutated(
                    request,
                    {
                        "request_id": request_ids,
                        "order_id": ids(known.order_ids),
                        "status": int_values(INT32, *range(8)),
                        "expected_version": int_values(INT64, 1, 2, 3),
                        "estimated_delivery_time": times,
                    },
                )
            )
        return "UpdateOrderStatus", request

    @st.composite
    def get(draw: st.DrawFn) -> tuple[str, Message]:
        method = draw(st.sampled_from(["GetOrderStatus", "GetOrderDetails"]))
        request = REQUEST_TYPES[method](
            order_id=draw(some_ids),
            min_version=draw(st.sampled_from([0, 0, 1, 2, 9])),
        )
        if draw(MUTATE):
            draw(
                mutated(
                    request,
                    {
                        "order_id": ids(known.order_ids),
                        "min_version": int_values(INT64, 1, 2, 99),
                    },
                )
            )
        return method, request

    @st.composite
    def batch(draw: st.DrawFn) -> tuple[str, Message]:
        order_ids = draw(st.lists(some_ids, min_size=1, max_size=12))
        request = order_service_pb2.BatchGetOrderStatusRequest(order_ids=order_ids)
        if draw(MUTATE):
            hostile = st.lists(ids(known.order_ids), max_size=105)
            draw(mutated(request, {"order_ids": hostile}))
        return "BatchGetOrderStatus", request

    @st.composite
    def listing(draw: st.DrawFn) -> tuple[str, Message]:
        method = draw(st.sampled_from(["ListOrdersByCustomer", "ListOrdersByRestaurant"]))
        owner = "customer_id" if method == "ListOrdersByCustomer" else "restaurant_id"
        request = REQUEST_TYPES[method](
            **{owner: known.customer_id if owner == "customer_id" else known.restaurant_id},
            page_size=draw(st.sampled_from([0, 1, 2, 100, 101])),
            page_token=draw(st.sampled_from(["", *known.page_tokens])),
            status_filter=draw(st.integers(0, 7)),
        )
        if draw(MUTATE):
            draw(
                mutated(
                    request,
                    {
                        owner: ids([known.customer_id, known.restaurant_id]),
                        "page_size": int_values(INT32, 2, 100, 101),
                        "page_token": st.one_of(st.sampled_from(known.page_tokens), hostile_text()),
                        "status_filter": int_values(INT32, *range(8)),
                    },
                )
            )
        return method, request

    @st.composite
    def watch(draw: st.DrawFn) -> tuple[str, Message]:
        request: Message
        if draw(st.booleans()):
            request = order_service_pb2.WatchOrderStatusRequest(
                order_id=draw(some_ids), after_version=draw(st.sampled_from([0, 1, 2, 9]))
            )
            mutations: Mutations = {
                "order_id": ids(known.order_ids),
                "after_version": int_values(INT64, 1, 2, 99),
            }
        else:
            request = order_service_pb2.WatchRestaurantOrdersRequest(
                restaurant_id=known.restaurant_id,
                status_filter=draw(st.integers(0, 7)),  # type: ignore[arg-type]
                resume_token=draw(st.sampled_from(["", *known.page_tokens])),
            )
            mutations = {
                "restaurant_id": ids([known.restaurant_id, known.customer_id]),
                "status_filter": int_values(INT32, *range(8)),
                "resume_token": st.one_of(st.sampled_from(known.page_tokens), hostile_text()),
            }
        if draw(MUTATE):
            draw(mutated(request, mutations))
        return request.DESCRIPTOR.name.removesuffix("Request"), request

    raw = st.tuples(st.sampled_from(METHODS), st.binary(max_size=300))
    # Weights by repetition: writes most, then reads, then raw bytes.
    writes = [create(), create(), create(), update(), update(), update()]
    return st.one_of(*writes, get(), get(), batch(), listing(), watch(), raw)


# --- the run -------------------------------------------------------------------------------
def invoke(channel: grpc.Channel, method: str, payload: bytes) -> bytes | RichError:
    """The reply, or a watch's first message (b"" when it ended OK without one, or has nothing
    to send yet), or the error."""
    if method in STREAMING:
        stream: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
            f"/{SERVICE}/{method}"
        )
        messages = stream(payload, timeout=WATCH_FIRST_MESSAGE_S)
        try:
            return next(iter(messages), b"")
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                return b""  # a valid watch after the current version waits for the next one
            return rich_error(error)
        finally:
            messages.cancel()
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(f"/{SERVICE}/{method}")
    try:
        reply: bytes = call(payload, timeout=30)
    except grpc.RpcError as error:
        return rich_error(error)
    return reply


def decodes(method: str, payload: bytes) -> bool:
    try:
        REQUEST_TYPES[method].FromString(payload)
    except DecodeError:
        return False
    return True


def serving(channel: grpc.Channel) -> bool:
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def prepare(channel: grpc.Channel) -> Known:
    """A few real orders of one customer and restaurant, some moved, and real page tokens."""
    customer, restaurant = str(uuid.uuid4()), str(uuid.uuid4())
    order_ids, request_ids = [], []
    for n in range(5):
        request_id = str(uuid.uuid4())
        request = order_service_pb2.CreateOrderRequest(
            request_id=request_id,
            customer_id=customer,
            restaurant_id=restaurant,
            items=[
                order_pb2.OrderItem(
                    item_id="pizza",
                    name="Pizza",
                    quantity=n + 1,
                    unit_price=order_pb2.Money(currency_code="USD", amount_minor=1599),
                )
            ],
            delivery_location=order_pb2.DeliveryLocation(
                latitude=52.5,
                longitude=13.4,
                address="Main St 1",
                city="Berlin",
                postal_code="10115",
            ),
        )
        reply = invoke(channel, "CreateOrder", request.SerializeToString())
        assert isinstance(reply, bytes), reply
        order_ids.append(order_service_pb2.CreateOrderResponse.FromString(reply).order.order_id)
        request_ids.append(request_id)
    for order_id in order_ids[:2]:
        move = order_service_pb2.UpdateOrderStatusRequest(
            request_id=str(uuid.uuid4()), order_id=order_id, status=order_pb2.ORDER_STATUS_CONFIRMED
        )
        assert isinstance(invoke(channel, "UpdateOrderStatus", move.SerializeToString()), bytes)
        request_ids.append(move.request_id)
    tokens = []
    lists = {"ListOrdersByCustomer": customer, "ListOrdersByRestaurant": restaurant}
    for method, owner in lists.items():
        field = "customer_id" if method == "ListOrdersByCustomer" else "restaurant_id"
        payload = REQUEST_TYPES[method](**{field: owner, "page_size": 2}).SerializeToString()
        deadline = time.monotonic() + 30
        # Lists are served by the read model, which the projector fills eventually.
        while not (token := _token(method, invoke(channel, method, payload))):
            assert time.monotonic() < deadline, f"no second page of {method} after 30 s"
            time.sleep(0.1)
        tokens.append(token)
    return Known(order_ids, customer, restaurant, request_ids, tokens)


def _token(method: str, reply: bytes | RichError) -> str:
    assert isinstance(reply, bytes), reply
    response_type = getattr(order_service_pb2, method + "Response")
    token: str = response_type.FromString(reply).next_page_token
    return token


def check_one(
    channel: grpc.Channel,
    method: str,
    request: Message | bytes,
    codes: Counter[tuple[str, str]],
    recent: list[str],
) -> None:
    resolve_recent(request, recent)
    payload = request if isinstance(request, bytes) else request.SerializeToString()
    decodable = decodes(method, payload)
    outcome = invoke(channel, method, payload)
    code = grpc.StatusCode.OK if isinstance(outcome, bytes) else outcome.code
    label = code.name
    if isinstance(outcome, RichError) and outcome.reason not in (None, code.name):
        label += f" ({outcome.reason})"
    codes[(method if decodable else f"{method} (undecodable)", label)] += 1
    if len(payload) > MAX_MESSAGE_BYTES:  # refused before it costs anything (documented)
        assert code is grpc.StatusCode.RESOURCE_EXHAUSTED, (method, outcome)
        return
    assert code in DOCUMENTED, (method, request, outcome)
    if isinstance(outcome, RichError):
        assert outcome.size <= DEFAULT_SOFT_LIMIT, (method, outcome.size)
        assert outcome.reason, outcome
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            assert outcome.violations, (method, outcome)
        if not decodable:
            assert outcome.reason == "MALFORMED_REQUEST", outcome
        return
    assert decodable
    if method in ("CreateOrder", "UpdateOrderStatus"):
        response_type = getattr(order_service_pb2, method + "Response")
        order = response_type.FromString(outcome).order
        if method == "CreateOrder":
            recent.append(order.order_id)
        assert order.total.amount_minor == sum(i.total_price.amount_minor for i in order.items)
        # What the service accepted, the read model can store.
        assert item_problems(items.details_item(order, 1_900_000_000), KEYS) == []
        assert items.order_from_item(items.details_item(order, 1_900_000_000)) == order


async def test_hostile_requests_find_nothing(
    start_service: StartService,
    local_stack: StackEndpoints,
    database_url: str,
) -> None:
    service = await start_full_service(start_service, local_stack, database_url)
    codes: Counter[tuple[str, str]] = Counter()
    started = time.monotonic()
    # The server is another process, so this test's blocking calls hold up nothing of it.
    with grpc.insecure_channel(service.target) as channel:
        known = prepare(channel)
        recent = list(known.order_ids)
        seen = 0

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(call=requests(known))
        def one_request(call: tuple[str, Message | bytes]) -> None:
            nonlocal seen
            method, request = call
            # A dead service would show as UNAVAILABLE; say so, with its last words.
            exited = service.process.poll()
            assert exited is None, f"the service exited with {exited}:\n{service.log()[-3000:]}"
            check_one(channel, method, request, codes, recent)
            seen += 1
            if seen % 50 == 0:
                assert serving(channel)

        one_request()
        assert serving(channel)

    elapsed = time.monotonic() - started
    total = sum(codes.values())
    print(f"\ncontract fuzz: {total} cases in {elapsed:.0f} s")
    for (method, code), count in sorted(codes.items()):
        print(f"  {method:38} {code:42} {count}")
    by_code = Counter[str]()
    for (_, label), count in codes.items():
        by_code[label.split(" ")[0]] += count
    print("  by code: " + ", ".join(f"{c} {n}" for c, n in by_code.most_common()))

    db = await asyncpg.connect(database_url)
    try:
        assert await write_model_problems(db) == []
    finally:
        await db.close()
    log = service.log()
    assert "Traceback" not in log
    assert '"level": "ERROR"' not in log
    assert service.process.poll() is None
