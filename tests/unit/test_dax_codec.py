"""The DAX endpoint's codecs against what amazon-dax-client itself encodes: CBOR framing,
compiled expressions back to text, attribute values, keys and item values."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import cbor2
import pytest
from amazondax import AttributeValueEncoder, CborSExprGenerator, LexDecimal
from hypothesis import given, settings
from hypothesis import strategies as st

from uoom_orders_dax import lex_decimal
from uoom_orders_dax.attribute_lists import AttributeLists, list_id
from uoom_orders_dax.caches import TtlCache
from uoom_orders_dax.errors import DaxError
from uoom_orders_dax.expressions import ExpressionWriter
from uoom_orders_dax.framing import Incomplete, MalformedCbor, decode_sequence, item_end
from uoom_orders_dax.items import decode_values, encode_values, projected
from uoom_orders_dax.keys import KeySchema, decode_key, encode_key
from uoom_orders_dax.values import to_attribute_value, to_wire


@pytest.mark.parametrize(
    "value",
    [0, -1, 2**40, "text", b"bytes", [1, [2, {"a": None}]], {1: True}, 1.5, Decimal("1.25")],
)
def test_item_end_finds_where_an_item_stops_and_asks_for_more_before(value: Any) -> None:
    data = cbor2.dumps(value)
    assert item_end(data + b"\x00") == len(data)
    for cut in range(len(data)):
        with pytest.raises(Incomplete):
            item_end(data[:cut])


def test_item_end_reads_indefinite_lengths_and_rejects_stray_breaks() -> None:
    stream = bytes([0xBF, 0x01, 0x9F, 0x02, 0xFF, 0xFF])  # {1: [2]} with indefinite lengths
    assert item_end(stream) == len(stream)
    with pytest.raises(Incomplete):
        item_end(stream[:-1])
    with pytest.raises(MalformedCbor):
        item_end(b"\xff")
    assert list(decode_sequence(cbor2.dumps(7) + cbor2.dumps("x"))) == [7, "x"]


def _compiled(**expressions: str | None) -> Any:
    names = {"#s": "status", "#v": "version", "#o": "orderId"}
    values = {
        ":s": {"S": "PENDING"},
        ":v": {"N": "3"},
        ":l": {"L": [{"S": "x"}]},
        ":set": {"SS": ["a"]},
    }
    used = set(re.findall(r"[#:]\w+", " ".join(e for e in expressions.values() if e)))
    used_names = {k: v for k, v in names.items() if k in used}
    used_values = {k: v for k, v in values.items() if k in used}
    return CborSExprGenerator.encode_expressions(
        expressions.get("condition"),
        expressions.get("key_condition"),
        expressions.get("filter"),
        expressions.get("update"),
        expressions.get("projection"),
        used_names,
        used_values,
    )


def test_conditions_compiled_by_the_client_read_back_as_equivalent_text() -> None:
    compiled = _compiled(
        condition="attribute_not_exists(#o) OR (#v < :v AND NOT begins_with(#s, :s))",
        filter="size(a.b[2]) > :v AND #s IN (:s, :v) AND c BETWEEN :v AND :v",
    )
    writer = ExpressionWriter()
    assert writer.condition(compiled.Condition, "c") == (
        "attribute_not_exists(#n0) OR (#n1 < :c0 AND NOT begins_with(#n2, :c1))"
    )
    assert writer.condition(compiled.Filter, "f") == (
        "size(#n3.#n4[2]) > :f0 AND #n2 IN (:f1, :f0) AND #n5 BETWEEN :f0 AND :f0"
    )
    fields = writer.request_fields()
    assert fields["ExpressionAttributeNames"] == {
        "#n0": "orderId",
        "#n1": "version",
        "#n2": "status",
        "#n3": "a",
        "#n4": "b",
        "#n5": "c",
    }
    assert fields["ExpressionAttributeValues"][":c1"] == {"S": "PENDING"}
    assert fields["ExpressionAttributeValues"][":f0"] == {"N": "3"}


def test_updates_and_projections_read_back() -> None:
    compiled = _compiled(
        update="SET #v = if_not_exists(#v, :v) + :v, l = list_append(l, :l) REMOVE x ADD n :v "
        "DELETE t :set",
        projection="#s, a.b[1]",
    )
    writer = ExpressionWriter()
    assert writer.update(compiled.Update) == (
        "SET #n0 = if_not_exists(#n0, :u0) + :u0, #n1 = list_append(#n1, :u1) REMOVE #n2 "
        "ADD #n3 :u0 DELETE #n4 :u2"
    )
    assert writer.values[":u2"] == {"SS": ["a"]}
    text, paths = writer.projection(compiled.Projection)
    assert text == "#n5, #n6.#n7[1]"
    assert paths == [("status",), ("a", "b", 1)]


def test_a_malformed_expression_is_a_validation_error() -> None:
    with pytest.raises(DaxError) as error:
        ExpressionWriter().condition(cbor2.dumps([2, [], []]), "c")
    assert error.value.dynamodb_code == "ValidationException"


@pytest.mark.parametrize(
    "value",
    [
        {"S": "x"},
        {"N": "12"},
        {"N": "-1.50"},
        {"N": "123456789012345678901234567890"},
        {"B": b"\x00"},
        {"BOOL": True},
        {"NULL": True},
        {"SS": ["a", "b"]},
        {"NS": ["1", "2.5"]},
        {"BS": [b"a"]},
        {"L": [{"S": "a"}, {"M": {"k": {"N": "1"}}}]},
    ],
)
def test_attribute_values_survive_the_wire_both_ways(value: dict[str, Any]) -> None:
    wire = cbor2.loads(cbor2.dumps(to_wire(value)))
    assert to_attribute_value(wire) == value
    # and the client's own encoding of the value decodes to the same
    assert to_attribute_value(cbor2.loads(AttributeValueEncoder.encode_attribute_value(value))) == (
        value
    )


@pytest.mark.parametrize(
    ("schema", "key"),
    [
        (KeySchema((("id", "S"),)), {"id": {"S": "order-1"}}),
        (KeySchema((("id", "N"),)), {"id": {"N": "42"}}),
        (KeySchema((("id", "B"),)), {"id": {"B": b"\x01\x02"}}),
        (KeySchema((("id", "S"), ("at", "S"))), {"id": {"S": "c"}, "at": {"S": "2026"}}),
        (KeySchema((("id", "N"), ("at", "B"))), {"id": {"N": "7"}, "at": {"B": b"\xff"}}),
        (KeySchema((("id", "S"), ("n", "N"))), {"id": {"S": "c"}, "n": {"N": "-12.5"}}),
        (KeySchema((("id", "S"), ("n", "N"))), {"id": {"S": "c"}, "n": {"N": "0"}}),
    ],
)
def test_keys_are_packed_as_the_client_packs_them(
    schema: KeySchema, key: dict[str, dict[str, Any]]
) -> None:
    client_schema = [{"AttributeName": n, "AttributeType": t} for n, t in schema.attributes]
    client_bytes = AttributeValueEncoder.encode_key(key, client_schema)
    assert encode_key(key, schema) == client_bytes
    assert decode_key(client_bytes, schema) == key


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        lambda negative, coefficient, exponent: Decimal(
            f"{'-' if negative else ''}{coefficient}E{exponent}"
        ),
        st.booleans(),
        st.integers(0, 10**38 - 1),
        st.integers(-100, 80),
    )
)
def test_numeric_range_keys_pack_byte_for_byte_as_the_client_packs_them(value: Decimal) -> None:
    assert lex_decimal.encode(value) == LexDecimal.encode(value)
    decoded = lex_decimal.decode(LexDecimal.encode(value))
    assert str(decoded) == str(LexDecimal.decode_all(LexDecimal.encode(value)))


def test_item_values_follow_the_attribute_list_the_client_numbered() -> None:
    lists = AttributeLists()
    item = {"id": {"S": "k"}, "b": {"N": "2"}, "a": {"S": "x"}}
    names = AttributeValueEncoder._get_canonical_attribute_list(item, [{"AttributeName": "id"}])
    number = lists.define(names)
    assert number == list_id(["a", "b"]) == AttributeLists().define(["a", "b"])  # stable ids
    client_bytes = AttributeValueEncoder.encode_values(
        item, [{"AttributeName": "id"}], names, number
    )
    assert decode_values(client_bytes, lists) == {"a": {"S": "x"}, "b": {"N": "2"}}
    assert encode_values(item, frozenset({"id"}), lists) == client_bytes
    assert projected(item, [("b",), ("missing",), ("a",)]) == {0: 2, 2: "x"}
    with pytest.raises(DaxError):
        lists.names_of(12345)


def test_cache_entries_expire_and_a_zero_ttl_caches_nothing() -> None:
    now = [0.0]
    cache: TtlCache[str, int | None] = TtlCache(10, 2, clock=lambda: now[0])
    cache.put("absent", None)
    hit = cache.get("absent")
    assert hit is not None
    assert hit.value is None
    cache.put("a", 1)
    cache.put("b", 2)  # over the bound: the least recently used goes
    assert cache.get("absent") is None
    now[0] = 10.0
    assert cache.get("a") is None
    off: TtlCache[str, int] = TtlCache(0, 10)
    off.put("a", 1)
    assert off.get("a") is None
