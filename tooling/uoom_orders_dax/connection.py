"""One client connection: the preamble, then requests answered in order.

A request is `1`, the method id and the method's arguments, all CBOR. authorizeConnection
has no reply (the client writes it in front of the request it precedes); every other method
gets a success (an empty array, then the result) or an error in DAX's shape. A method the
endpoint does not serve is answered with an error too, never left waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from uoom_orders_dax import control, reads, writes
from uoom_orders_dax.errors import DaxError
from uoom_orders_dax.framing import CborStream, MalformedCbor
from uoom_orders_dax.protocol import ARGUMENT_COUNTS, MAGIC, REQUEST_SERVICE, SUCCESS, Method
from uoom_orders_dax.shared_state import SharedState

logger = logging.getLogger(__name__)

Handler = Callable[[SharedState, Sequence[bytes]], Awaitable[bytes]]
HANDLERS: dict[int, Handler] = {
    Method.ENDPOINTS: control.endpoints,
    Method.DEFINE_KEY_SCHEMA: control.define_key_schema,
    Method.DEFINE_ATTRIBUTE_LIST_ID: control.define_attribute_list_id,
    Method.DEFINE_ATTRIBUTE_LIST: control.define_attribute_list,
    Method.GET_ITEM: reads.get_item,
    Method.BATCH_GET_ITEM: reads.batch_get_item,
    Method.QUERY: reads.query,
    Method.PUT_ITEM: writes.put_item,
    Method.UPDATE_ITEM: writes.update_item,
    Method.DELETE_ITEM: writes.delete_item,
}


async def read_preamble(stream: CborStream) -> None:
    """The magic string, then: layering (0), session id or null, {"UserAgent": …}, 0."""
    if await stream.read_bytes(len(MAGIC)) != MAGIC:
        raise MalformedCbor("not a DAX client: the connection magic is missing")
    for _ in range(4):
        await stream.read_raw()


async def serve(
    state: SharedState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answers one connection's requests until the client closes it."""
    stream = CborStream(reader)
    authorized = False
    try:
        await read_preamble(stream)
        while True:
            service = await stream.read()
            method = await stream.read()
            count = ARGUMENT_COUNTS.get(method) if service == REQUEST_SERVICE else None
            if count is None:
                # Its arguments cannot be told from the next request: answer, then hang up.
                writer.write(DaxError.unsupported(f"method {service}/{method}").encode())
                await writer.drain()
                return
            args = [await stream.read_raw() for _ in range(count)]
            if method == Method.AUTHORIZE_CONNECTION:
                authorized = control.is_signed(args)
                continue
            writer.write(await _answer(state, method, args, authorized))
            await writer.drain()
    except (EOFError, ConnectionError):
        return
    except MalformedCbor as error:
        logger.info("closing a connection that sent malformed CBOR: %s", error)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _answer(
    state: SharedState, method: int, args: Sequence[bytes], authorized: bool
) -> bytes:
    try:
        if not authorized:
            raise DaxError.unauthenticated()
        handler = HANDLERS.get(method)
        if handler is None:
            raise DaxError.unsupported(Method(method).name)
        return SUCCESS + await handler(state, args)
    except DaxError as error:
        return error.encode()
    except ValueError as error:  # malformed CBOR, values, keys or UTF-8
        return DaxError.validation(f"malformed request: {error}").encode()
    except Exception as error:  # a bug here must not hang the client: answer it
        logger.exception("%s failed", Method(method).name)
        return DaxError.internal(f"{type(error).__name__}: {error}").encode()
