"""DynamoDB attribute values (`{"S": "x"}`) ⇄ the CBOR values DAX puts on the wire.

DAX sends attribute values untyped: a CBOR text is S, bytes are B, an int or a decimal
fraction (tag 4) is N, arrays are L, maps are M, and the three set types have tags of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from cbor2 import CBORTag

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

TAG_STRING_SET = 3321
TAG_NUMBER_SET = 3322
TAG_BINARY_SET = 3323
TAG_PATH_ORDINAL = 3324  # a list index inside a document path of an expression
_SET_TAGS = {TAG_STRING_SET: "SS", TAG_NUMBER_SET: "NS", TAG_BINARY_SET: "BS"}
_TAGS_OF_SETS = {name: tag for tag, name in _SET_TAGS.items()}


class AttributeValueError(ValueError):
    """A CBOR value that is no DynamoDB attribute value."""


def number_text(value: int | Decimal | float) -> str:
    """DynamoDB's text for a number: plain digits, never an exponent."""
    if isinstance(value, int):
        return str(value)
    decimal = value if isinstance(value, Decimal) else Decimal(repr(value))
    if not decimal.is_finite():
        raise AttributeValueError(f"{value} is not a DynamoDB number")
    if decimal == decimal.to_integral_value():
        return str(int(decimal))
    return format(decimal, "f")


def wire_number(text: str) -> int | Decimal:
    """A DynamoDB number text as the CBOR number DAX sends: an int when it is whole."""
    try:
        decimal = Decimal(text)
    except InvalidOperation as error:
        raise AttributeValueError(f"{text!r} is not a number") from error
    if not any(mark in text for mark in ".eE"):
        return int(decimal)
    return decimal


def to_attribute_value(value: Any) -> AttributeValue:
    """The attribute value of a CBOR value from the client."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal | float):
        return {"N": number_text(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, list):
        return {"L": [to_attribute_value(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attribute_value(v) for k, v in value.items()}}
    if isinstance(value, CBORTag) and value.tag in _SET_TAGS:
        kind = _SET_TAGS[value.tag]
        members = list(value.value)
        if kind == "NS":
            return {kind: [number_text(m) for m in members]}
        if kind == "BS":
            return {kind: [bytes(m) for m in members]}
        return {kind: [str(m) for m in members]}
    raise AttributeValueError(f"no attribute value is encoded as {type(value).__name__}")


def to_item(values: Mapping[Any, Any]) -> Item:
    """A map of attribute names to CBOR values, as an item."""
    return {str(name): to_attribute_value(value) for name, value in values.items()}


def to_wire(value: Mapping[str, Any]) -> Any:
    """The CBOR value (for cbor2) of an attribute value from DynamoDB."""
    if len(value) != 1:
        raise AttributeValueError(f"an attribute value has exactly one type, got {sorted(value)}")
    ((kind, content),) = value.items()
    if kind == "S":
        return content
    if kind == "N":
        return wire_number(content)
    if kind == "B":
        return bytes(content)
    if kind == "BOOL":
        return bool(content)
    if kind == "NULL":
        return None
    if kind == "L":
        return [to_wire(v) for v in content]
    if kind == "M":
        return {k: to_wire(v) for k, v in content.items()}
    if kind in _TAGS_OF_SETS:
        members = [wire_number(m) if kind == "NS" else m for m in content]
        return CBORTag(_TAGS_OF_SETS[kind], members)
    raise AttributeValueError(f"unknown attribute value type {kind!r}")
