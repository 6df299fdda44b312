"""Requests to commands and queries: every field checked, every violation reported at once."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from google.protobuf.message import Message
from uoom.orders.v1 import order_pb2, order_service_pb2

from uoom_orders import wire
from uoom_orders.domain import contract_rules as rules
from uoom_orders.domain.commands import CreateOrder, UpdateOrderStatus
from uoom_orders.domain.order import DeliveryLocation, OrderItem
from uoom_orders.domain.validation import Violations, canonical_uuid, canonical_uuids, echo
from uoom_orders.read.ports import ListQuery, ListScope

# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
_MAX_NANOS = 999_999_999


def _fingerprint(request: Message) -> bytes:
    """The request's content without its request_id: a retry must match it exactly."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).digest()


def _optional_time(
    message: Message, field: str, violations: Violations, now: datetime
) -> datetime | None:
    if not message.HasField(field):
        return None
    ts = getattr(message, field)
    if not (_MIN_SECONDS <= ts.seconds <= _MAX_SECONDS and 0 <= ts.nanos <= _MAX_NANOS):
        violations.add(field, "not a valid timestamp: years 0001..9999, nanos 0..999999999")
        return None
    return violations.future_time(field, wire.from_timestamp(ts), now)


def create_order(request: order_service_pb2.CreateOrderRequest) -> CreateOrder:
    v = Violations()
    now = datetime.now(UTC)
    request_id = v.uuid("request_id", request.request_id)
    customer_id = v.uuid("customer_id", request.customer_id)
    restaurant_id = v.uuid("restaurant_id", request.restaurant_id)
    channel_id = v.channel("channel_id", request.channel_id, rules.CHANNEL_ID)
    items, currency = _items(request.items, v)
    location = _location(request, v)
    eta = _optional_time(request, "estimated_delivery_time", v, now)
    v.raise_if_any()
    assert request_id and customer_id and restaurant_id and location
    return CreateOrder(
        request_id=request_id,
        fingerprint=_fingerprint(request),
        customer_id=customer_id,
        restaurant_id=restaurant_id,
        channel_id=channel_id,
        currency_code=currency,
        items=items,
        delivery_location=location,
        estimated_delivery_time=eta,
    )


def _items(
    items: Sequence[order_pb2.OrderItem], v: Violations
) -> tuple[tuple[OrderItem, ...], str]:
    sequence = list(items)
    if not sequence:
        v.add("items", "at least one item is required")
        return (), ""
    if len(sequence) > rules.ITEMS.max_items:
        v.add("items", f"at most {rules.ITEMS.max_items} items, got {len(sequence)}")
        return (), ""
    currency = sequence[0].unit_price.currency_code
    parsed = []
    for n, item in enumerate(sequence):
        at = f"items[{n}]"
        item_id = v.text(f"{at}.item_id", item.item_id, rules.ITEM_ID)
        name = v.text(f"{at}.name", item.name, rules.ITEM_NAME)
        quantity = v.int_range(f"{at}.quantity", item.quantity, rules.QUANTITY)
        if not item.HasField("unit_price"):
            v.add(f"{at}.unit_price", "required")
            continue
        code = item.unit_price.currency_code
        v.currency(f"{at}.unit_price.currency_code", code)
        if code != currency:
            v.add(
                f"{at}.unit_price.currency_code",
                f"every item must be in one currency: {echo(currency)} (items[0]), "
                f"got {echo(code)}",
            )
        price = v.int_range(
            f"{at}.unit_price.amount_minor", item.unit_price.amount_minor, rules.UNIT_PRICE_MINOR
        )
        parsed.append(OrderItem(item_id, name, quantity, price))
    return tuple(parsed), currency


def _location(
    request: order_service_pb2.CreateOrderRequest, v: Violations
) -> DeliveryLocation | None:
    if not request.HasField("delivery_location"):
        v.add("delivery_location", "required")
        return None
    loc = request.delivery_location
    return DeliveryLocation(
        latitude=v.coordinate("delivery_location.latitude", loc.latitude, rules.LATITUDE),
        longitude=v.coordinate("delivery_location.longitude", loc.longitude, rules.LONGITUDE),
        address=v.text("delivery_location.address", loc.address, rules.ADDRESS),
        city=v.text("delivery_location.city", loc.city, rules.CITY),
        postal_code=v.text("delivery_location.postal_code", loc.postal_code, rules.POSTAL_CODE),
    )


def update_order_status(request: order_service_pb2.UpdateOrderStatusRequest) -> UpdateOrderStatus:
    v = Violations()
    request_id = v.uuid("request_id", request.request_id)
    order_id = v.uuid("order_id", request.order_id)
    status = wire.status_from_proto(request.status)
    if status is None:
        v.add(
            "status",
            f"required: a known status other than ORDER_STATUS_UNSPECIFIED, got {request.status}",
        )
    v.non_negative("expected_version", request.expected_version)
    eta = _optional_time(request, "estimated_delivery_time", v, datetime.now(UTC))
    v.raise_if_any()
    assert request_id and order_id and status
    return UpdateOrderStatus(
        request_id=request_id,
        fingerprint=_fingerprint(request),
        order_id=order_id,
        status=status,
        expected_version=request.expected_version or None,
        estimated_delivery_time=eta,
    )


def order_id_and_min_version(
    order_id: str, min_version: int, *, version_field: str = "min_version"
) -> tuple[UUID, int]:
    """The order id and a non-negative version (`version_field` names it in violations:
    min_version of the reads, after_version of WatchOrderStatus)."""
    parsed = canonical_uuid(order_id)
    if parsed is not None and min_version >= 0:  # the common case, without the bookkeeping
        return parsed, min_version
    v = Violations()
    v.uuid("order_id", order_id)
    v.non_negative(version_field, min_version)
    v.raise_if_any()
    raise AssertionError("unreachable: a violation was raised")


def batch_ids(order_ids: Sequence[str]) -> list[UUID]:
    raw = list(order_ids)
    limit = rules.BATCH_IDS.max_ids
    # The common case, without the bookkeeping of reporting violations (a UUID is always
    # true, so all() asks nothing of UUID's own methods).
    if 0 < len(raw) <= limit:
        parsed = canonical_uuids(raw)
        if all(parsed):
            # No None left (all() asked); a cast would be one more Python call per batch.
            return parsed  # type: ignore[return-value]
    v = Violations()
    if not raw:
        v.add("order_ids", "at least one order id is required")
    elif len(raw) > limit:
        v.add("order_ids", f"at most {limit} ids, got {len(raw)}")
    parsed = [v.uuid(f"order_ids[{n}]", value) for n, value in enumerate(raw)] if not v else []
    v.raise_if_any()
    return [p for p in parsed if p is not None]


def list_query(
    scope: ListScope, owner_field: str, owner_id: str, page_size: int, status_filter: int
) -> ListQuery:
    v = Violations()
    owner = v.uuid(owner_field, owner_id)
    size = v.page_size("page_size", page_size)
    status = None
    if status_filter:
        status = wire.status_from_proto(status_filter)
        if status is None:
            v.add("status_filter", f"not a known status: {status_filter}")
    v.raise_if_any()
    assert owner is not None
    return ListQuery(scope=scope, owner_id=owner, status=status, limit=size, after=None)
