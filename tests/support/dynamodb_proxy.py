"""A DynamoDB endpoint in front of a real one (moto) that answers the way DynamoDB may and the
local endpoint never does. For tests only.

Every request is forwarded unchanged; an operation given a handler (by its name, e.g.
"BatchGetItem") is answered by that handler instead, which may call the upstream endpoint as
often as it likes and rewrite what it answers. Two handlers are provided:

- `UnprocessedKeys`: BatchGetItem answers that move some of the found items into
  `UnprocessedKeys`, as DynamoDB does under throttling or past 16 MB (moto never does).
- `GsiTieOrder`: GSI queries whose order among items with the same index sort key is not the
  table key's. DynamoDB leaves that order unspecified; moto happens to sort ties by the table's
  hash key, which is also the order PostgreSQL gives them here, so a reader that relies on it
  passes against moto and breaks on the real thing.

The answers are real DynamoDB JSON with the `x-amz-crc32` header recomputed, so botocore's own
checks see nothing unusual.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

JsonObject = dict[str, Any]
# Sends a request body to the upstream endpoint (same operation); returns its status and body.
Forward = Callable[[JsonObject], Awaitable[tuple[int, JsonObject]]]
Handler = Callable[[JsonObject, Forward], Awaitable[tuple[int, JsonObject]]]

_TARGET_PREFIX = "DynamoDB_20120810."
# Headers that belong to one hop (or that aiohttp recomputes), not to the request.
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass
class _Upstream:
    url: str
    session: aiohttp.ClientSession

    async def send(self, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        async with self.session.post(self.url, data=body, headers=dict(headers)) as reply:
            return reply.status, await reply.read()


class DynamoDBProxy:
    """Listens on 127.0.0.1 (a free port); `endpoint` is its URL. An async context manager.

    `calls` counts requests by operation name, whether handled or forwarded.
    """

    def __init__(self, upstream: str, handlers: Mapping[str, Handler] | None = None) -> None:
        self._upstream_url = upstream
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.calls: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self._upstream: _Upstream | None = None
        self._port = 0

    @property
    def endpoint(self) -> str:
        if self._runner is None:
            raise RuntimeError("the proxy is not running")
        return f"http://127.0.0.1:{self._port}"

    async def __aenter__(self) -> DynamoDBProxy:
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30),
            # moto answers `Connection: close`; keep nothing around.
            connector=aiohttp.TCPConnector(force_close=True),
        )
        self._upstream = _Upstream(self._upstream_url, session)
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/", self._handle)
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(runner.addresses[0][1])
        self._runner = runner
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            await upstream.session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._upstream is not None
        upstream = self._upstream
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        operation = request.headers.get("X-Amz-Target", "").removeprefix(_TARGET_PREFIX)
        self.calls[operation] += 1
        handler = self.handlers.get(operation)
        if handler is None:
            status, raw = await upstream.send(headers, body)
            return _reply(status, raw)

        async def forward(payload: JsonObject) -> tuple[int, JsonObject]:
            status, raw = await upstream.send(headers, json.dumps(payload).encode())
            return status, json.loads(raw)

        status, answer = await handler(json.loads(body), forward)
        return _reply(status, json.dumps(answer).encode())


def _reply(status: int, raw: bytes) -> web.Response:
    return web.Response(
        status=status,
        body=raw,
        content_type="application/x-amz-json-1.0",
        headers={"x-amz-crc32": str(zlib.crc32(raw) & 0xFFFFFFFF)},
    )


HoldBack = Callable[[int, list[JsonObject]], Collection[int]]
"""Given the call's number (1, 2, …) and the items found for a table, the positions of the
items to answer as unprocessed instead."""


class UnprocessedKeys:
    """A BatchGetItem handler: forwards, then moves the items `hold_back` picks into
    `UnprocessedKeys` (echoing the request's read options, as DynamoDB does). `delay` seconds
    are added to every answer: a throttled table is also a slow one."""

    def __init__(
        self,
        hold_back: HoldBack,
        key_attributes: tuple[str, ...] = ("orderId",),
        *,
        delay: float = 0.0,
    ) -> None:
        self._hold_back = hold_back
        self._key_attributes = key_attributes
        self.delay = delay
        self.calls = 0
        self.held_back = 0

    @classmethod
    def first_calls(cls, count: int) -> UnprocessedKeys:
        """The first `count` calls each answer every other found item as unprocessed."""
        return cls(lambda call, found: range(0, len(found), 2) if call <= count else ())

    @classmethod
    def always(
        cls, key_values: Collection[str], attribute: str = "orderId", *, delay: float = 0.0
    ) -> UnprocessedKeys:
        """Every call answers the items whose `attribute` is in `key_values` as unprocessed:
        DynamoDB that never gets round to them."""
        wanted = set(key_values)
        return cls(
            lambda _, found: [i for i, item in enumerate(found) if item[attribute]["S"] in wanted],
            delay=delay,
        )

    async def __call__(self, request: JsonObject, forward: Forward) -> tuple[int, JsonObject]:
        status, answer = await forward(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if status != 200:
            return status, answer
        self.calls += 1
        unprocessed: JsonObject = answer.setdefault("UnprocessedKeys", {})
        for table, found in answer.get("Responses", {}).items():
            held = set(self._hold_back(self.calls, found))
            if not held:
                continue
            asked: JsonObject = request["RequestItems"][table]
            echo = unprocessed.setdefault(
                table, {k: v for k, v in asked.items() if k != "Keys"} | {"Keys": []}
            )
            for position in sorted(held):
                item = found[position]
                echo["Keys"].append({name: item[name] for name in self._key_attributes})
            answer["Responses"][table] = [
                item for position, item in enumerate(found) if position not in held
            ]
            self.held_back += len(held)
        return status, answer


class GsiTieOrder:
    """A Query handler for global secondary indexes whose order among items with the same sort
    key is a fixed permutation of the table key (a hash of it), not the table key itself.

    It reads the whole key range upstream (key condition and filter kept, Limit and
    ExclusiveStartKey removed), orders it as such an index would, then applies
    ExclusiveStartKey and Limit itself. Unlike DynamoDB, Limit counts the items after the
    filter; a reader must loop on LastEvaluatedKey either way. Like DynamoDB, LastEvaluatedKey
    is present whenever Limit was reached, even at the very end. Queries of the table itself
    are forwarded as they are.
    """

    def __init__(self, index_keys: Mapping[str, tuple[str, str]], table_key: str = "orderId"):
        """`index_keys`: index name → (hash key attribute, sort key attribute)."""
        self._index_keys = dict(index_keys)
        self._table_key = table_key
        self.queries = 0

    def _tie_rank(self, item: Mapping[str, Any]) -> str:
        return hashlib.sha256(item[self._table_key]["S"].encode()).hexdigest()

    def _position(self, item: Mapping[str, Any], sort_key: str) -> tuple[str, str]:
        return item[sort_key]["S"], self._tie_rank(item)

    async def __call__(self, request: JsonObject, forward: Forward) -> tuple[int, JsonObject]:
        index = request.get("IndexName")
        if index not in self._index_keys:
            return await forward(request)
        self.queries += 1
        hash_key, sort_key = self._index_keys[index]
        limit = request.get("Limit")
        start = request.get("ExclusiveStartKey")
        everything = {k: v for k, v in request.items() if k not in ("Limit", "ExclusiveStartKey")}
        found: list[JsonObject] = []
        while True:
            status, answer = await forward(everything)
            if status != 200:
                return status, answer
            found.extend(answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if not last:
                break
            everything["ExclusiveStartKey"] = last
        forward_order = request.get("ScanIndexForward", True)
        found.sort(key=lambda item: self._position(item, sort_key), reverse=not forward_order)
        if start is not None:
            at = self._position(start, sort_key)

            def beyond_start(item: JsonObject) -> bool:
                here = self._position(item, sort_key)
                return here > at if forward_order else here < at

            found = [item for item in found if beyond_start(item)]
        page = found if limit is None else found[:limit]
        reply: JsonObject = {"Items": page, "Count": len(page), "ScannedCount": len(page)}
        if limit is not None and len(page) == limit and page:
            final = page[-1]
            reply["LastEvaluatedKey"] = {
                name: final[name] for name in (self._table_key, hash_key, sort_key)
            }
        return 200, reply
