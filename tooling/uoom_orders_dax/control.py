"""The session methods: authorizeConnection, endpoints (discovery), and the definitions the
client asks for before it can read or write items (key schemas and attribute lists)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import cbor2

from uoom_orders_dax import arguments
from uoom_orders_dax.errors import DaxError
from uoom_orders_dax.framing import loads
from uoom_orders_dax.protocol import EndpointField, Role
from uoom_orders_dax.shared_state import SharedState

_SIGNATURE_ALGORITHM = b"AWS4-HMAC-SHA256"


def is_signed(args: Sequence[bytes]) -> bool:
    """authorizeConnection: an access key, a signature and a SigV4 string to sign must be
    there. No signature is verified: any credentials will do, as with moto."""
    try:
        access_key, signature, string_to_sign = (loads(raw) for raw in args[:3])
    except ValueError:
        return False
    return (
        isinstance(access_key, str)
        and bool(access_key)
        and isinstance(signature, str)
        and bool(signature)
        and isinstance(string_to_sign, bytes)
        and string_to_sign.startswith(_SIGNATURE_ALGORITHM)
    )


async def endpoints(state: SharedState, args: Sequence[bytes]) -> bytes:
    """Every node of the endpoint; the first is the leader, which takes the writes."""
    roster = []
    for number, node in enumerate(state.nodes):
        roster.append(
            {
                EndpointField.NODE: number,
                EndpointField.HOSTNAME: node.host,
                EndpointField.ADDRESS: ipaddress.ip_address(node.host).packed,
                EndpointField.PORT: node.port,
                EndpointField.ROLE: Role.LEADER if number == 0 else Role.REPLICA,
                EndpointField.AVAILABILITY_ZONE: "local",
                EndpointField.LEADER_SESSION_ID: 0,
            }
        )
    return cbor2.dumps(roster)


async def define_key_schema(state: SharedState, args: Sequence[bytes]) -> bytes:
    """{attribute name: type}, hash key first."""
    schema = await state.dynamodb.key_schema(arguments.text(args[0], "TableName"))
    return cbor2.dumps(dict(schema.attributes))


async def define_attribute_list_id(state: SharedState, args: Sequence[bytes]) -> bytes:
    names = loads(args[0])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DaxError.validation("an attribute list is an array of names")
    return cbor2.dumps(state.attribute_lists.define(names))


async def define_attribute_list(state: SharedState, args: Sequence[bytes]) -> bytes:
    number = loads(args[0])
    if not isinstance(number, int):
        raise DaxError.validation("an attribute list id is an integer")
    return cbor2.dumps(list(state.attribute_lists.names_of(number)))
