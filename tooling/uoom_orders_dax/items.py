"""Items on the wire: key bytes, then an attribute-list id followed by the values.

A full item travels as the values of its non-key attributes in name order, prefixed by the id
of that name list (the key travels separately, or the client already has it). A projected item
is a map from the projection's ordinal to the value at that path. Write replies that return
only the updated attributes (UPDATED_OLD/UPDATED_NEW) send a list id and a map from position
in that list to value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cbor2

from uoom_orders_dax.attribute_lists import AttributeLists
from uoom_orders_dax.errors import DaxError
from uoom_orders_dax.framing import decode_sequence
from uoom_orders_dax.values import AttributeValue, Item, to_attribute_value, to_wire

PathElement = str | int
Path = tuple[PathElement, ...]


def encode_values(
    item: Mapping[str, AttributeValue], key_names: frozenset[str], lists: AttributeLists
) -> bytes:
    """The non-key attributes of an item: list id, then each value in name order."""
    names = sorted(set(item) - key_names)
    parts = [cbor2.dumps(lists.define(names))]
    parts.extend(cbor2.dumps(to_wire(item[name])) for name in names)
    return b"".join(parts)


def decode_values(data: bytes, lists: AttributeLists) -> Item:
    """The attributes of a written item's values (the client numbered the list)."""
    values = list(decode_sequence(data))
    if not values or not isinstance(values[0], int):
        raise DaxError.validation("item values start with an attribute list id")
    names = lists.names_of(values[0])
    if len(names) != len(values) - 1:
        raise DaxError.validation("item values do not match their attribute list")
    return {name: to_attribute_value(value) for name, value in zip(names, values[1:], strict=True)}


def encode_updated(attributes: Mapping[str, AttributeValue], lists: AttributeLists) -> bytes:
    """UPDATED_OLD/UPDATED_NEW attributes: list id, then {position in the list: value}."""
    names = sorted(attributes)
    by_position = {i: to_wire(attributes[name]) for i, name in enumerate(names)}
    return cbor2.dumps(lists.define(names)) + cbor2.dumps(by_position)


def value_at(item: Mapping[str, AttributeValue], path: Path) -> AttributeValue | None:
    """The value at a document path (`a.b[2]`), or None when the item has none there."""
    current: Any = {"M": item}
    for element in path:
        if isinstance(element, int):
            elements = current.get("L") if isinstance(current, dict) else None
            if elements is None or element >= len(elements):
                return None
            current = elements[element]
        else:
            members = current.get("M") if isinstance(current, dict) else None
            if members is None or element not in members:
                return None
            current = members[element]
    result: AttributeValue = current
    return result


def projected(item: Mapping[str, AttributeValue], paths: Sequence[Path]) -> dict[int, Any]:
    """A projected item: {ordinal of the path in the projection: the value there}."""
    found: dict[int, Any] = {}
    for ordinal, path in enumerate(paths):
        value = value_at(item, path)
        if value is not None:
            found[ordinal] = to_wire(value)
    return found
