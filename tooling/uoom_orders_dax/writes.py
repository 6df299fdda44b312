"""The write methods: PutItem, UpdateItem and DeleteItem go to DynamoDB first, then change
the item cache (write-through); the query cache is left alone, as in DAX."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cbor2

from uoom_orders_dax import arguments
from uoom_orders_dax.expressions import ExpressionWriter
from uoom_orders_dax.items import decode_values, encode_updated, encode_values
from uoom_orders_dax.keys import KeySchema, decode_key
from uoom_orders_dax.protocol import RETURN_VALUES_NAMES, RequestParam, ResponseParam
from uoom_orders_dax.shared_state import SharedState
from uoom_orders_dax.values import AttributeValue, Item


def _common(params: Mapping[int, Any], request: dict[str, Any], writer: ExpressionWriter) -> str:
    """Adds the condition and returns the ReturnValues the client asked for."""
    condition = params.get(RequestParam.CONDITION_EXPRESSION)
    if condition is not None:
        request["ConditionExpression"] = writer.condition(condition, "c")
    return RETURN_VALUES_NAMES.get(int(params.get(RequestParam.RETURN_VALUES, 1)), "NONE")


def _reply(
    state: SharedState,
    schema: KeySchema,
    attributes: Mapping[str, AttributeValue] | None,
    return_values: str,
) -> bytes:
    reply: dict[int, Any] = {}
    if attributes and return_values in ("UPDATED_OLD", "UPDATED_NEW"):
        reply[ResponseParam.ATTRIBUTES] = encode_updated(attributes, state.attribute_lists)
    elif attributes and return_values != "NONE":
        # The client puts the key back itself, from its request.
        reply[ResponseParam.ATTRIBUTES] = encode_values(
            attributes, schema.names, state.attribute_lists
        )
    return cbor2.dumps(reply)


async def put_item(state: SharedState, args: Sequence[bytes]) -> bytes:
    table = arguments.text(args[0], "TableName")
    schema = await state.dynamodb.key_schema(table)
    key = decode_key(arguments.binary(args[1], "Key"), schema)
    item: Item = {**decode_values(arguments.binary(args[2], "Item"), state.attribute_lists), **key}
    writer = ExpressionWriter()
    request: dict[str, Any] = {"TableName": table, "Item": item}
    return_values = _common(arguments.kwargs(args[3]), request, writer)
    if return_values != "NONE":
        request["ReturnValues"] = return_values
    request.update(writer.request_fields())
    answer = await state.dynamodb.call("put_item", **request)
    state.remember_item(table, schema, key, item)
    return _reply(state, schema, answer.get("Attributes"), return_values)


async def update_item(state: SharedState, args: Sequence[bytes]) -> bytes:
    table = arguments.text(args[0], "TableName")
    schema = await state.dynamodb.key_schema(table)
    key = decode_key(arguments.binary(args[1], "Key"), schema)
    params = arguments.kwargs(args[2])
    writer = ExpressionWriter()
    request: dict[str, Any] = {"TableName": table, "Key": key}
    update = params.get(RequestParam.UPDATE_EXPRESSION)
    if update is not None:
        request["UpdateExpression"] = writer.update(update)
    return_values = _common(params, request, writer)
    # DAX caches the item as it is after the update, so it asks DynamoDB for all of it when
    # the client's own choice allows; otherwise the cached copy is dropped instead.
    caches_new = return_values in ("NONE", "ALL_NEW")
    request["ReturnValues"] = "ALL_NEW" if caches_new else return_values
    request.update(writer.request_fields())
    answer = await state.dynamodb.call("update_item", **request)
    attributes = answer.get("Attributes")
    if caches_new:
        state.remember_item(table, schema, key, attributes)
    else:
        state.forget_item(table, schema, key)
    return _reply(state, schema, attributes, return_values)


async def delete_item(state: SharedState, args: Sequence[bytes]) -> bytes:
    table = arguments.text(args[0], "TableName")
    schema = await state.dynamodb.key_schema(table)
    key = decode_key(arguments.binary(args[1], "Key"), schema)
    writer = ExpressionWriter()
    request: dict[str, Any] = {"TableName": table, "Key": key}
    return_values = _common(arguments.kwargs(args[2]), request, writer)
    if return_values != "NONE":
        request["ReturnValues"] = return_values
    request.update(writer.request_fields())
    answer = await state.dynamodb.call("delete_item", **request)
    state.forget_item(table, schema, key)
    return _reply(state, schema, answer.get("Attributes"), return_values)
