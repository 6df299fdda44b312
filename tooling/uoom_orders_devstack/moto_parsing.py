"""moto's parsing of a DynamoDB request body, worked out once per operation.

For each request moto parses the JSON body, then walks the result against botocore's model of
the operation (`JSONParser`): it keeps the members the model names, drops nulls, decodes blobs
and casts numbers, looking up a handler by the shape's type name at every node. For a
conditional PutItem of an order's item that walk was a sixth of the endpoint's CPU (py-spy,
`--gil`), the largest single cost left in moto.

`parse_parameters` does the same walk with functions built once per operation from the same
model (`_compile`), so a node costs a call, not a lookup by name. It gives the same result or
none at all: a body it cannot parse, a type it does not know, any error on the way, and the
request goes to moto's own parser, which answers it as it always did.
tests/contract/test_moto_parsing.py checks both give equal parameters for the service's calls,
random attribute values and malformed bodies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.core.parse import default_blob_parser, default_timestamp_parser
from moto.core.request import determine_request_protocol
from moto.core.responses import BaseResponse
from moto.core.utils import get_service_model
from moto.dynamodb.responses import DynamoHandler

Parse = Callable[[Any], Any]
"""Turns the JSON value of one shape into what moto's parser makes of it."""

_INTEGERS = frozenset({"integer", "long", "short", "byte"})
_FLOATS = frozenset({"float", "double"})
# Types moto's JSON parser hands back as they are (its `_default_handle`).
_AS_THEY_ARE = frozenset({"string", "boolean"})


def _unchanged(value: Any) -> Any:
    """Strings and booleans; the builders below skip calling it where they can."""
    return value


def _compile(shape: Any, memo: dict[str, list[Parse]]) -> Parse:
    """The parse of `shape`, as JSONParser._parse_shape would do it.

    Containers are memoised by shape name: a container met again is parsed by the function
    built for it. The model is recursive (an AttributeValue holds maps and lists of
    AttributeValues): one met again while its own function is being built goes through a cell
    filled once it is built."""
    kind = shape.type_name
    if kind in _AS_THEY_ARE:
        return _unchanged
    if kind in _INTEGERS:
        return int
    if kind in _FLOATS:
        return float
    if kind == "blob":
        return default_blob_parser
    if kind == "timestamp":
        return default_timestamp_parser
    if kind not in ("structure", "list", "map"):
        raise TypeError(f"no compiled parse for shape type {kind!r}")
    if kind == "structure" and shape.is_document_type:
        return _unchanged
    known = memo.get(shape.name)
    if known:
        return known[0]
    if known is not None:  # being built: met again inside itself
        return lambda value: known[0](value)
    cell: list[Parse] = []
    memo[shape.name] = cell
    built = (
        _structure(shape, memo)
        if kind == "structure"
        else _list(shape, memo)
        if kind == "list"
        else _map(shape, memo)
    )
    cell.append(built)
    return built


def _structure(shape: Any, memo: dict[str, list[Parse]]) -> Parse:
    members = [
        (name, member.serialization.get("name", name), _compile(member, memo))
        for name, member in shape.members.items()
    ]

    def parse(value: Any) -> Any:
        if value is None:
            return None
        parsed = {}
        for name, json_name, member in members:
            raw = value.get(json_name)
            if raw is not None:
                parsed[name] = raw if member is _unchanged else member(raw)
        return parsed

    return parse


def _list(shape: Any, memo: dict[str, list[Parse]]) -> Parse:
    member = _compile(shape.member, memo)
    if member is _unchanged:  # string and number sets, names
        return list
    return lambda node: [member(item) for item in node]


def _map(shape: Any, memo: dict[str, list[Parse]]) -> Parse:
    key, value = _compile(shape.key, memo), _compile(shape.value, memo)
    if key is _unchanged:  # string keys, as every map of DynamoDB's has
        return lambda node: {k: value(v) for k, v in node.items()}
    return lambda node: {key(k): value(v) for k, v in node.items()}


_operations: dict[tuple[str, str], Parse | None] = {}


def _operation_parse(service_model: Any, action: str) -> Parse | None:
    """The parse of `action`'s input; None when there is none to build (moto's parser then)."""
    key = (service_model.service_name, action)
    if key not in _operations:
        try:
            shape = service_model.operation_model(action).input_shape
            _operations[key] = None if shape is None else _compile(shape, {})
        except Exception:
            _operations[key] = None
    return _operations[key]


def parse_parameters(self: Any, request: Any) -> None:
    """moto's BaseResponse.parse_parameters for a JSON body, through the compiled parse."""
    try:
        service_model = get_service_model(self.boto3_service_name)
        if determine_request_protocol(service_model, request.content_type) == "json":
            parse = _operation_parse(service_model, self._get_action())
            if parse is not None:
                body = request.data
                if body:
                    self.params = parse(json.loads(body.decode("utf-8")))
                    return
    except Exception:  # moto's parser answers it below, as it always did
        pass
    BaseResponse.parse_parameters(self, request)


def install() -> bool:
    """Puts `parse_parameters` in place of moto's for DynamoDB; False (nothing changed) when
    this moto parses requests some other way."""
    if getattr(BaseResponse, "parse_parameters", None) is None:
        return False
    DynamoHandler.parse_parameters = parse_parameters  # type: ignore[method-assign]
    return True
