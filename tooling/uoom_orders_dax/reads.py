"""The read methods: GetItem and BatchGetItem through the item cache, Query through the
query cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cbor2

from uoom_orders_dax import arguments
from uoom_orders_dax.errors import DaxError
from uoom_orders_dax.expressions import ExpressionWriter
from uoom_orders_dax.framing import loads
from uoom_orders_dax.items import Path, encode_values, projected
from uoom_orders_dax.keys import (
    KeySchema,
    decode_index_key,
    decode_key,
    encode_index_key,
    encode_key,
)
from uoom_orders_dax.protocol import SELECT_NAMES, RequestParam, ResponseParam
from uoom_orders_dax.shared_state import SharedState
from uoom_orders_dax.values import Item

# A BatchGetItem reply is [Responses, UnprocessedKeys] followed by a consumed-capacity array
# outside that pair: the client reads three items although the array header says two.
_NO_CONSUMED_CAPACITY = cbor2.dumps([])


def _encode_item(
    state: SharedState, item: Item, schema: KeySchema, paths: Sequence[Path] | None
) -> Any:
    if paths:
        return projected(item, paths)
    return encode_values(item, schema.names, state.attribute_lists)


async def get_item(state: SharedState, args: Sequence[bytes]) -> bytes:
    table = arguments.text(args[0], "TableName")
    schema = await state.dynamodb.key_schema(table)
    key = decode_key(arguments.binary(args[1], "Key"), schema)
    params = arguments.kwargs(args[2])
    paths = _projection_paths(params)
    consistent = bool(params.get(RequestParam.CONSISTENT_READ, False))
    item = await state.get_item(table, schema, key, consistent)
    reply: dict[int, Any] = {}
    if item is not None:
        reply[ResponseParam.ITEM] = _encode_item(state, item, schema, paths)
    return cbor2.dumps(reply)


def _projection_paths(params: dict[int, Any]) -> list[Path] | None:
    raw = params.get(RequestParam.PROJECTION_EXPRESSION)
    return None if raw is None else ExpressionWriter().projection(raw)[1]


async def batch_get_item(state: SharedState, args: Sequence[bytes]) -> bytes:
    request = loads(args[0])
    if not isinstance(request, dict) or not request:
        raise DaxError.validation("RequestItems must name at least one table")
    wanted: dict[str, tuple[KeySchema, bool, list[Path] | None, list[Item]]] = {}
    for table, spec in request.items():
        consistent, projection, raw_keys = spec
        schema = await state.dynamodb.key_schema(table)
        paths = None if projection is None else ExpressionWriter().projection(projection)[1]
        keys = [decode_key(raw, schema) for raw in raw_keys]
        wanted[table] = (schema, bool(consistent), paths, keys)

    found: dict[str, list[Item]] = {table: [] for table in wanted}
    misses: dict[str, dict[str, Any]] = {}
    for table, (schema, consistent, _, keys) in wanted.items():
        for key in keys:
            hit = None if consistent else state.items.get((table, encode_key(key, schema)))
            if hit is None:
                misses.setdefault(table, {"Keys": [], "ConsistentRead": consistent})
                misses[table]["Keys"].append(key)
            elif hit.value is not None:
                found[table].append(hit.value)

    unprocessed: dict[str, list[bytes]] = {}
    if misses:
        answer = await state.dynamodb.call("batch_get_item", RequestItems=misses)
        for table, spec in misses.items():
            schema, consistent, _, _ = wanted[table]
            returned = answer.get("Responses", {}).get(table, [])
            left = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            found[table].extend(returned)
            if left:
                unprocessed[table] = [encode_key(key, schema) for key in left]
            if consistent:
                continue
            by_key = {encode_key(schema.key_of(item), schema): item for item in returned}
            not_done = set(unprocessed.get(table, []))
            for key in spec["Keys"]:
                key_bytes = encode_key(key, schema)
                if key_bytes not in not_done:
                    state.items.put((table, key_bytes), by_key.get(key_bytes))

    responses: dict[str, list[Any]] = {}
    for table, items in found.items():
        schema, _, paths, _ = wanted[table]
        if paths:
            responses[table] = [projected(item, paths) for item in items]
        else:  # key bytes and values, flattened into one array
            responses[table] = [
                part
                for item in items
                for part in (
                    encode_key(schema.key_of(item), schema),
                    _encode_item(state, item, schema, None),
                )
            ]
    return cbor2.dumps([responses, unprocessed]) + _NO_CONSUMED_CAPACITY


async def query(state: SharedState, args: Sequence[bytes]) -> bytes:
    table = arguments.text(args[0], "TableName")
    schema = await state.dynamodb.key_schema(table)
    key_condition = loads(args[1])
    params = arguments.kwargs(args[2])
    writer = ExpressionWriter()
    request: dict[str, Any] = {"TableName": table}
    if key_condition is not None:
        request["KeyConditionExpression"] = writer.condition(key_condition, "k")
    index = arguments.optional_text(params, RequestParam.INDEX_NAME)
    if index is not None:
        request["IndexName"] = index
    filter_raw = params.get(RequestParam.FILTER_EXPRESSION)
    if filter_raw is not None:
        request["FilterExpression"] = writer.condition(filter_raw, "f")
    paths: list[Path] | None = None
    projection_raw = params.get(RequestParam.PROJECTION_EXPRESSION)
    if projection_raw is not None:
        request["ProjectionExpression"], paths = writer.projection(projection_raw)
    if RequestParam.SELECT in params:
        request["Select"] = SELECT_NAMES[params[RequestParam.SELECT]]
    if RequestParam.LIMIT in params:
        request["Limit"] = int(params[RequestParam.LIMIT])
    if RequestParam.CONSISTENT_READ in params:
        request["ConsistentRead"] = bool(params[RequestParam.CONSISTENT_READ])
    if RequestParam.SCAN_INDEX_FORWARD in params:
        request["ScanIndexForward"] = bool(params[RequestParam.SCAN_INDEX_FORWARD])
    start = params.get(RequestParam.EXCLUSIVE_START_KEY)
    if start is not None:
        request["ExclusiveStartKey"] = (
            decode_index_key(start) if index is not None else decode_key(start, schema)
        )
    request.update(writer.request_fields())

    answer = await state.query(request)
    reply: dict[int, Any] = {}
    if "Items" in answer:
        reply[ResponseParam.ITEMS] = [
            projected(item, paths)
            if paths
            else [encode_key(schema.key_of(item), schema), _encode_item(state, item, schema, None)]
            for item in answer["Items"]
        ]
    reply[ResponseParam.COUNT] = answer.get("Count", 0)
    reply[ResponseParam.SCANNED_COUNT] = answer.get("ScannedCount", answer.get("Count", 0))
    last = answer.get("LastEvaluatedKey")
    if last:
        reply[ResponseParam.LAST_EVALUATED_KEY] = (
            encode_index_key(last) if index is not None else encode_key(last, schema)
        )
    return cbor2.dumps(reply)
