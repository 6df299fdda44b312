"""Reading a request's arguments: the table name, a key, and the trailing kwargs map."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from uoom_orders_dax.errors import DaxError
from uoom_orders_dax.framing import loads


def text(raw: bytes, what: str) -> str:
    """A name the client sends as UTF-8 bytes (or text)."""
    value = loads(raw)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise DaxError.validation(f"{what} must be a string")


def binary(raw: bytes, what: str) -> bytes:
    value = loads(raw)
    if not isinstance(value, bytes):
        raise DaxError.validation(f"{what} must be bytes")
    return value


def kwargs(raw: bytes) -> dict[int, Any]:
    """The optional parameters, by the client's parameter id; null means none.

    The client writes ConditionExpression twice under the same id: first its text, then the
    compiled expression. Decoding keeps the last value of a repeated key, the compiled one,
    which is the only one that can be read without the original placeholders.
    """
    value = loads(raw)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DaxError.validation("request parameters must be a map")
    return {int(k): v for k, v in value.items()}


def optional_text(params: Mapping[int, Any], param: int) -> str | None:
    value = params.get(param)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
