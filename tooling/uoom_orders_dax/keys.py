"""Item keys on the wire, the way DAX packs them.

A table key is a byte string laid out by the table's key schema: with a hash key alone, an S
or B key is its raw bytes and an N key one CBOR number; with a range key too, the hash value
is one CBOR item and the range value follows as raw bytes (S as UTF-8, B as is, N in the
order-preserving form of lex_decimal). An index key
(a Query's start or last key on a GSI) is a CBOR map of attribute names to values instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import cbor2

from uoom_orders_dax import lex_decimal
from uoom_orders_dax.errors import DaxError
from uoom_orders_dax.framing import MalformedCbor, item_end, loads
from uoom_orders_dax.values import AttributeValue, Item, number_text, to_item, to_wire


@dataclass(frozen=True)
class KeySchema:
    """A table's key attributes, hash first: (name, type) with type S, N or B."""

    attributes: tuple[tuple[str, str], ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.attributes)

    def key_of(self, item: Mapping[str, AttributeValue]) -> Item:
        """The key attributes of an item."""
        try:
            return {name: dict(item[name]) for name, _ in self.attributes}
        except KeyError as error:
            raise DaxError.validation(f"the item has no key attribute {error}") from error


def _typed(value: AttributeValue, name: str, kind: str) -> Any:
    if kind not in value:
        raise DaxError.validation(f"key attribute {name} must be of type {kind}")
    return value[kind]


def encode_key(key: Mapping[str, AttributeValue], schema: KeySchema) -> bytes:
    """A table key's bytes."""
    (hash_name, hash_type), *rest = schema.attributes
    hash_value = _typed(key[hash_name], hash_name, hash_type)
    if not rest:
        if hash_type == "S":
            return str(hash_value).encode()
        if hash_type == "B":
            return bytes(hash_value)
        return cbor2.dumps(to_wire({"N": hash_value}))
    ((range_name, range_type),) = rest
    head = cbor2.dumps(to_wire({hash_type: hash_value}))
    range_value = _typed(key[range_name], range_name, range_type)
    if range_type == "S":
        return head + str(range_value).encode()
    if range_type == "B":
        return head + bytes(range_value)
    return head + lex_decimal.encode(Decimal(range_value))


def decode_key(data: bytes, schema: KeySchema) -> Item:
    """A table key from its bytes."""
    (hash_name, hash_type), *rest = schema.attributes
    if not rest:
        if hash_type == "S":
            return {hash_name: {"S": data.decode()}}
        if hash_type == "B":
            return {hash_name: {"B": data}}
        return {hash_name: {"N": number_text(loads(data))}}
    try:
        split = item_end(data)
    except Exception as error:
        raise MalformedCbor("a key's hash value is not one CBOR item") from error
    hash_value = loads(data[:split])
    key: Item = {hash_name: {hash_type: hash_value}}
    if hash_type == "N":
        key[hash_name] = {"N": number_text(hash_value)}
    ((range_name, range_type),) = rest
    tail = data[split:]
    if range_type == "S":
        key[range_name] = {"S": tail.decode()}
    elif range_type == "B":
        key[range_name] = {"B": tail}
    else:
        key[range_name] = {"N": number_text(lex_decimal.decode(tail))}
    return key


def encode_index_key(key: Mapping[str, AttributeValue]) -> bytes:
    """An index query's last key: a CBOR map of every key attribute."""
    return cbor2.dumps({name: to_wire(value) for name, value in key.items()})


def decode_index_key(data: bytes) -> Item:
    """An index query's start key."""
    values = loads(data)
    if not isinstance(values, Mapping):
        raise MalformedCbor("an index key is a CBOR map")
    return to_item(values)
