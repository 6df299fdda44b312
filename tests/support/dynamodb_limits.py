"""DynamoDB's documented limits on what an item may hold, checked without a server.

moto checks only some of them (it refuses a number below 1e-130, but takes 1E+126 and 41
digits), so the read model's codec is held to the documented rules:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html and
HowItWorks.NamingRulesDataTypes.html.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_ITEM_BYTES = 400 * 1024
MAX_NUMBER_DIGITS = 38
SMALLEST_MAGNITUDE = Decimal("1E-130")
LARGEST_MAGNITUDE = Decimal("9.9999999999999999999999999999999999999E+125")


def number_problem(text: str) -> str | None:
    """Why DynamoDB would refuse the number `text`, or None."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return f"{text!r} is not a number"
    if not value.is_finite():
        return f"{text!r} is not finite"
    if value.is_zero():
        return None
    if abs(value) < SMALLEST_MAGNITUDE:
        return f"{text!r} underflows (magnitude below 1E-130)"
    if abs(value) > LARGEST_MAGNITUDE:
        return f"{text!r} overflows (magnitude above 9.99...E+125)"
    digits = len(value.normalize().as_tuple().digits)
    if digits > MAX_NUMBER_DIGITS:
        return f"{text!r} has {digits} significant digits, more than 38"
    return None


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))  # raises for a lone surrogate: not storable either
    if kind == "N":
        # Up to 21 bytes; about one byte per two significant digits plus one.
        digits = len(Decimal(inner).normalize().as_tuple().digits)
        return min(21, (digits + 1) // 2 + 1)
    if kind == "BOOL" or kind == "NULL":
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in inner)
    raise ValueError(f"unexpected attribute type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size as DynamoDB counts it: names plus values (UTF-8), with map and list
    overheads (an upper bound; DynamoDB's exact count is slightly smaller)."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def item_problems(
    item: Mapping[str, Mapping[str, Any]], key_attributes: tuple[str, ...]
) -> list[str]:
    """Every reason DynamoDB would refuse `item`: numbers out of range, key attributes (table or
    index) empty, strings that are not UTF-8, the item over 400 KB."""
    problems: list[str] = []

    def walk(path: str, value: Mapping[str, Any]) -> None:
        ((kind, inner),) = value.items()
        if kind == "N":
            problem = number_problem(inner)
            if problem:
                problems.append(f"{path}: {problem}")
        elif kind == "S":
            try:
                inner.encode("utf-8")
            except UnicodeEncodeError:
                problems.append(f"{path}: not UTF-8")
        elif kind == "M":
            for name, element in inner.items():
                walk(f"{path}.{name}", element)
        elif kind == "L":
            for n, element in enumerate(inner):
                walk(f"{path}[{n}]", element)

    for name, value in item.items():
        walk(name, value)
    for name in key_attributes:
        if name in item and not next(iter(item[name].values())):
            problems.append(f"{name}: a key attribute must not be empty")
    if not problems and item_size(item) > MAX_ITEM_BYTES:
        problems.append(f"item of {item_size(item)} bytes, above 400 KB")
    return problems


def as_dynamodb_returns(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`item` with every number rewritten in another valid form (plain decimal notation), as
    DynamoDB may return it: decoding must not depend on the text the writer chose."""

    def rewrite(value: Mapping[str, Any]) -> dict[str, Any]:
        ((kind, inner),) = value.items()
        if kind == "N":
            return {"N": format(Decimal(inner), "f")}
        if kind == "M":
            return {"M": {k: rewrite(v) for k, v in inner.items()}}
        if kind == "L":
            return {"L": [rewrite(v) for v in inner]}
        return {kind: inner}

    return {name: rewrite(value) for name, value in item.items()}
