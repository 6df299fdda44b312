"""Every input rule of the contract, stated once.

The validator (`domain/validation.py`, applied by `api/request_parsing.py`) checks requests with
these objects, and the `.proto` comment of each field in `FIELD_RULES` repeats the rule's `doc`
word for word: `tests/unit/test_contract_rules.py` fails when a limit changes here and not in
the contract, when a field of a request has no rule, or when a rule's boundary is not the one
the validator applies.
"""

from __future__ import annotations

from dataclasses import dataclass

# Ids: one spelling, the canonical one, so that every id the service answers with is exactly
# the string the caller sent (a batch's missing ids, idempotency fingerprints, page tokens).
UUID_EXAMPLE = "550e8400-e29b-41d4-a716-446655440000"
UUID_FORM = (
    "a UUID in canonical form, lower-case and hyphenated (8-4-4-4-12 hex digits, e.g. "
    f"{UUID_EXAMPLE}); any other spelling is refused"
)
# What "any other spelling" means, stated once in the service's comment.
UUID_SPELLINGS_DOC = (
    "Upper case, braces, urn:uuid:, missing hyphens, surrounding spaces and non-ASCII digits "
    "are refused (INVALID_ARGUMENT), never converted: an id the service answers with is "
    "always exactly the string the caller sent."
)

# A delivery coordinate closer to 0 than this is stored as 0: DynamoDB numbers cannot hold a
# magnitude below 1e-130, and 1e-9 degrees is about 0.1 mm on the ground.
COORDINATE_ZERO_BELOW = 1e-9


def _power_of_ten(value: float) -> str:
    """1e-09 as "1e-9"."""
    mantissa, exponent = f"{value:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


@dataclass(frozen=True, slots=True)
class Required:
    """A message field that must be set."""

    @property
    def doc(self) -> str:
        return "Required."


@dataclass(frozen=True, slots=True)
class OutputOnly:
    """A field the server fills; whatever a request puts there is ignored."""

    @property
    def doc(self) -> str:
        return "Output only: ignored in requests."


@dataclass(frozen=True, slots=True)
class UuidField:
    """A UUID in canonical form."""

    required: bool = True

    @property
    def doc(self) -> str:
        return f"{'Required' if self.required else 'Optional'}: {UUID_FORM}."


@dataclass(frozen=True, slots=True)
class TextField:
    """Free text: trimmed, then 1..max_len characters without control characters."""

    max_len: int

    @property
    def doc(self) -> str:
        return (
            f"Required: 1..{self.max_len} characters once trimmed of surrounding whitespace "
            "(the trimmed text is stored), without control characters."
        )


@dataclass(frozen=True, slots=True)
class IntRange:
    """An integer from `low` to `high`, both included."""

    low: int
    high: int
    context: str = ""

    @property
    def doc(self) -> str:
        return f"{self.context}{self.low}..{self.high}."


@dataclass(frozen=True, slots=True)
class Coordinate:
    """A WGS84 coordinate in degrees, -limit..limit."""

    limit: int

    @property
    def doc(self) -> str:
        return (
            f"WGS84 degrees, -{self.limit}..{self.limit}; a magnitude below "
            f"{_power_of_ten(COORDINATE_ZERO_BELOW)} is stored as 0."
        )


@dataclass(frozen=True, slots=True)
class CurrencyCode:
    """Three upper-case ASCII letters."""

    @property
    def doc(self) -> str:
        return "Three upper-case letters A-Z, e.g. USD (the form of an ISO 4217 code)."


@dataclass(frozen=True, slots=True)
class ChannelId:
    """Letters, digits, '.', '_' and '-'; a default when empty."""

    max_len: int
    default: str

    @property
    def doc(self) -> str:
        return (
            f'Optional: 1..{self.max_len} characters of [A-Za-z0-9._-]; "{self.default}" '
            "when empty."
        )


@dataclass(frozen=True, slots=True)
class ItemList:
    """1..max_items order lines in one currency."""

    max_items: int

    @property
    def doc(self) -> str:
        return f"Required: 1..{self.max_items} items, every unit_price in one currency."


@dataclass(frozen=True, slots=True)
class IdList:
    """1..max_ids UUIDs in canonical form."""

    max_ids: int

    @property
    def doc(self) -> str:
        return (
            f"Required: 1..{self.max_ids} ids, duplicates allowed (answered once), each "
            f"{UUID_FORM}."
        )


@dataclass(frozen=True, slots=True)
class FutureTime:
    """An optional timestamp that, when set, is valid and in the future."""

    @property
    def doc(self) -> str:
        return (
            "Optional; when set, a valid Timestamp (years 0001..9999) in the future, kept to "
            "the microsecond."
        )


@dataclass(frozen=True, slots=True)
class NonNegative:
    """An int64 that is 0 (meaning `zero_means`) or positive."""

    zero_means: str

    @property
    def doc(self) -> str:
        return f"Must not be negative; 0 means {self.zero_means}."


@dataclass(frozen=True, slots=True)
class StatusRequired:
    """A known OrderStatus other than UNSPECIFIED."""

    @property
    def doc(self) -> str:
        return "Required: a known OrderStatus other than ORDER_STATUS_UNSPECIFIED."


@dataclass(frozen=True, slots=True)
class StatusFilter:
    """UNSPECIFIED (all) or a known OrderStatus."""

    @property
    def doc(self) -> str:
        return "ORDER_STATUS_UNSPECIFIED means all; any other value must be a known OrderStatus."


@dataclass(frozen=True, slots=True)
class PageSize:
    """AIP-158 page size."""

    default: int
    maximum: int

    @property
    def doc(self) -> str:
        return (
            f"AIP-158: 0 means {self.default}, above {self.maximum} means {self.maximum}, "
            "negative is refused."
        )


@dataclass(frozen=True, slots=True)
class PageToken:
    """Empty, or a token this service issued for the same query."""

    @property
    def doc(self) -> str:
        return (
            "Empty for the first page, else a previous response's next_page_token for the same "
            "query (same id and status_filter); any other value is refused."
        )


@dataclass(frozen=True, slots=True)
class ResumeToken:
    """Empty, or a resume token this service handed out on a stream of the same query."""

    @property
    def doc(self) -> str:
        return (
            "Empty to start with the current board, else the resume_token of a message of an "
            "earlier stream for the same restaurant_id and status_filter; any other value is "
            "refused."
        )


Rule = (
    Required
    | OutputOnly
    | UuidField
    | TextField
    | IntRange
    | Coordinate
    | CurrencyCode
    | ChannelId
    | ItemList
    | IdList
    | FutureTime
    | NonNegative
    | StatusRequired
    | StatusFilter
    | PageSize
    | PageToken
    | ResumeToken
)

# --- the rules -----------------------------------------------------------------------------
ID = UuidField()
CHANNEL_ID = ChannelId(max_len=100, default="default-channel")
ITEMS = ItemList(max_items=100)
ITEM_ID = TextField(max_len=100)
ITEM_NAME = TextField(max_len=200)
QUANTITY = IntRange(1, 1000, context="Required: ")
# 100,000.00 in a two-decimal currency; the largest order total is then 100 items * 1000 *
# 10,000,000 = 10^12 minor units, far inside int64 and DynamoDB's 38 digits.
UNIT_PRICE_MINOR = IntRange(0, 10_000_000, context="In an item's unit_price: ")
CURRENCY = CurrencyCode()
LATITUDE = Coordinate(90)
LONGITUDE = Coordinate(180)
ADDRESS = TextField(max_len=500)
CITY = TextField(max_len=200)
POSTAL_CODE = TextField(max_len=20)
ESTIMATED_DELIVERY_TIME = FutureTime()
STATUS = StatusRequired()
EXPECTED_VERSION = NonNegative(zero_means="no version check")
MIN_VERSION = NonNegative(zero_means="no minimum")
BATCH_IDS = IdList(max_ids=100)
PAGE_SIZE = PageSize(default=20, maximum=100)
PAGE_TOKEN = PageToken()
AFTER_VERSION = NonNegative(zero_means="nothing seen yet (the first message is the current status)")
RESUME_TOKEN = ResumeToken()
STATUS_FILTER = StatusFilter()

# Every field of every request message (and of the messages inside them), by
# "Message.field": the contract's comment on that field contains the rule's `doc`.
FIELD_RULES: dict[str, Rule] = {
    "CreateOrderRequest.request_id": ID,
    "CreateOrderRequest.customer_id": ID,
    "CreateOrderRequest.restaurant_id": ID,
    "CreateOrderRequest.channel_id": CHANNEL_ID,
    "CreateOrderRequest.items": ITEMS,
    "CreateOrderRequest.delivery_location": Required(),
    "CreateOrderRequest.estimated_delivery_time": ESTIMATED_DELIVERY_TIME,
    "OrderItem.item_id": ITEM_ID,
    "OrderItem.name": ITEM_NAME,
    "OrderItem.quantity": QUANTITY,
    "OrderItem.unit_price": Required(),
    "OrderItem.total_price": OutputOnly(),
    "Money.currency_code": CURRENCY,
    "Money.amount_minor": UNIT_PRICE_MINOR,
    "DeliveryLocation.latitude": LATITUDE,
    "DeliveryLocation.longitude": LONGITUDE,
    "DeliveryLocation.address": ADDRESS,
    "DeliveryLocation.city": CITY,
    "DeliveryLocation.postal_code": POSTAL_CODE,
    "UpdateOrderStatusRequest.request_id": ID,
    "UpdateOrderStatusRequest.order_id": ID,
    "UpdateOrderStatusRequest.status": STATUS,
    "UpdateOrderStatusRequest.expected_version": EXPECTED_VERSION,
    "UpdateOrderStatusRequest.estimated_delivery_time": ESTIMATED_DELIVERY_TIME,
    "GetOrderStatusRequest.order_id": ID,
    "GetOrderStatusRequest.min_version": MIN_VERSION,
    "BatchGetOrderStatusRequest.order_ids": BATCH_IDS,
    "GetOrderDetailsRequest.order_id": ID,
    "GetOrderDetailsRequest.min_version": MIN_VERSION,
    "ListOrdersByCustomerRequest.customer_id": ID,
    "ListOrdersByCustomerRequest.page_size": PAGE_SIZE,
    "ListOrdersByCustomerRequest.page_token": PAGE_TOKEN,
    "ListOrdersByCustomerRequest.status_filter": STATUS_FILTER,
    "ListOrdersByRestaurantRequest.restaurant_id": ID,
    "ListOrdersByRestaurantRequest.page_size": PAGE_SIZE,
    "ListOrdersByRestaurantRequest.page_token": PAGE_TOKEN,
    "ListOrdersByRestaurantRequest.status_filter": STATUS_FILTER,
    "WatchOrderStatusRequest.order_id": ID,
    "WatchOrderStatusRequest.after_version": AFTER_VERSION,
    "WatchRestaurantOrdersRequest.restaurant_id": ID,
    "WatchRestaurantOrdersRequest.status_filter": STATUS_FILTER,
    "WatchRestaurantOrdersRequest.resume_token": RESUME_TOKEN,
}
