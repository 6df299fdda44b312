"""Status answers encoded from the near cache's bytes are the responses' own encodings."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st
from uoom.orders.v1 import order_pb2
from uoom.orders.v1 import order_service_pb2 as pb

from uoom_orders.api.answer_encoding import ReadAnswers, varint
from uoom_orders.read.near_cache import NearCache

_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@st.composite
def summaries(draw: st.DrawFn) -> order_pb2.OrderSummary:
    summary = order_pb2.OrderSummary(
        order_id=str(draw(st.uuids())),
        status=draw(st.sampled_from(order_pb2.OrderStatus.values())),
        customer_id=str(draw(st.uuids())),
        restaurant_id=str(draw(st.uuids())),
        channel_id=draw(st.text(max_size=20)),
        # Long enough for a record's length to take two and three bytes.
        tracking_code=draw(st.text(max_size=20_000)),
        version=draw(st.integers(min_value=0, max_value=2**63 - 1)),
    )
    summary.total.currency_code = draw(st.text(max_size=3))
    summary.total.amount_minor = draw(_INT64)
    for stamp in (summary.created_at, summary.updated_at, summary.estimated_delivery_time):
        if draw(st.booleans()):
            stamp.seconds = draw(st.integers(min_value=0, max_value=253_402_300_799))
            stamp.nanos = draw(st.integers(min_value=0, max_value=999_999_999))
    return summary


def _key(summary: order_pb2.OrderSummary) -> int:
    return uuid.UUID(summary.order_id).int


# No deadline: a run of this suite once failed here with every example passing on a rerun; what
# is checked is the bytes, and a busy machine can make one example slow.
@settings(deadline=None)
@given(st.lists(summaries(), max_size=12))
def test_a_batch_answer_is_the_response_message_encoded(
    records: list[order_pb2.OrderSummary],
) -> None:
    expected = pb.BatchGetOrderStatusResponse(orders=records)
    encoded = ReadAnswers().order_statuses([_key(r) for r in records], records)
    assert pb.BatchGetOrderStatusResponse.FromString(encoded) == expected
    # One field, its entries in order: the message's own encoding, byte for byte.
    assert encoded == expected.SerializeToString()


@settings(deadline=None)
@given(summaries())
def test_a_single_answer_is_the_response_message_encoded(record: order_pb2.OrderSummary) -> None:
    expected = pb.GetOrderStatusResponse(order=record)
    encoded = ReadAnswers().order_status(_key(record), record)
    assert pb.GetOrderStatusResponse.FromString(encoded) == expected
    assert encoded == expected.SerializeToString()


@given(st.integers(min_value=1, max_value=2**64 - 1))
def test_varint_is_protobufs(value: int) -> None:
    # An int64 field's encoding is its key and the varint of its 64 bits (two's complement).
    signed = value - 2**64 if value >= 2**63 else value
    encoded = pb.GetOrderStatusRequest(min_version=signed).SerializeToString()
    number = pb.GetOrderStatusRequest.DESCRIPTOR.fields_by_name["min_version"].number
    assert encoded == varint(number << 3) + varint(value)


def test_varint_of_zero_is_one_byte() -> None:
    assert varint(0) == b"\x00"


def test_near_cache_records_are_sent_as_the_cache_encoded_them() -> None:
    cache = NearCache()
    order_id = uuid.uuid4()
    record = order_pb2.OrderSummary(order_id=str(order_id), version=3, tracking_code="T1")
    assert cache.put(record, None, 2**40)
    answered = cache.get_summaries([order_id])[order_id.int]
    held = cache.encoded_summary(order_id.int, answered)
    assert held == record.SerializeToString()

    seen: list[bytes | None] = []

    def lookup(key: int, summary: order_pb2.OrderSummary) -> bytes | None:
        found = cache.encoded_summary(key, summary)
        seen.append(found)
        return found

    answers = ReadAnswers(lookup)
    assert answers.order_status(order_id.int, answered) == (
        pb.GetOrderStatusResponse(order=record).SerializeToString()
    )
    assert seen == [held]


def test_only_the_very_record_held_gets_the_cache_bytes() -> None:
    cache = NearCache()
    order_id = uuid.uuid4()
    old = order_pb2.OrderSummary(order_id=str(order_id), version=3, tracking_code="old")
    cache.put(old, None, 2**40)
    # An equal record that is another object (from another tier, say): encoded afresh.
    twin = order_pb2.OrderSummary()
    twin.CopyFrom(old)
    assert cache.encoded_summary(order_id.int, twin) is None
    # Once a newer version replaced it, the old record is not the cache's any more.
    newer = order_pb2.OrderSummary(order_id=str(order_id), version=4, tracking_code="newer")
    assert cache.put(newer, None, 2**40)
    assert cache.encoded_summary(order_id.int, old) is None
    assert cache.encoded_summary(order_id.int, newer) == newer.SerializeToString()
    assert cache.encoded_summary(uuid.uuid4().int, newer) is None
    answers = ReadAnswers(cache.encoded_summary)
    for record in (old, twin, newer):
        assert answers.order_status(order_id.int, record) == (
            pb.GetOrderStatusResponse(order=record).SerializeToString()
        )
