"""moto's DynamoDB replies encoded straight to JSON, as moto's own serializer would encode them.

moto (5.2) turns every reply into JSON with a generic serializer driven by botocore's model: for
each member of each structure it tries half a dozen spellings of the member's name through a
chain of alias providers. For a BatchGetItem of 100 order items that is about 150 ms of the
endpoint's CPU, 85 % of the call (measured: 177 → 23-35 ms a call with this module), and the
local stack's endpoint is what bounds reconciliation, rebuild and the fault-injection checks.

`encode` walks the same botocore shapes, but reads each structure member under its own name
only, and gives up (`Unsupported`) on anything it is not sure to encode exactly as moto would:
a structure that is not a plain dict, a key that is not a member's own name, a timestamp.
Those replies, errors and every other case go through moto's serializer as before
(`install`). tests/contract/test_moto_replies.py checks the two encodings agree, for every
operation the service calls and random attribute values.
"""

from __future__ import annotations

import base64
import json
from enum import Enum
from typing import Any

from moto import settings
from moto.core.responses import ActionResult
from moto.core.utils import get_service_model
from moto.dynamodb.responses import DynamoHandler


class Unsupported(Exception):
    """Not encoded here: moto's serializer encodes it."""


def encode(value: Any, shape: Any) -> Any:
    """`value` (a reply of moto's DynamoDB handler, made of dicts, lists and scalars) as JSON
    data for botocore `shape`, exactly as moto's JSON serializer would write it."""
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type:
            return value
        if not isinstance(value, dict):
            raise Unsupported(f"{shape.name} is a {type(value).__name__}")
        members = shape.members
        encoded = {}
        for key, member_value in value.items():
            member = members.get(key)
            # moto's serializer would look for the member under other names too (a dict holding
            # one would be encoded otherwise), and write it under its serialization name.
            if member is None or member.serialization.get("name", key) != key:
                raise Unsupported(f"{shape.name}.{key}")
            if member_value is not None:
                encoded[key] = encode(member_value, member)
        return encoded
    if kind == "list":
        member = shape.member
        return [None if item is None else encode(item, member) for item in value]
    if kind == "map":
        value_shape = shape.value
        return {
            key: None if item is None else encode(item, value_shape) for key, item in value.items()
        }
    if kind == "string":
        if isinstance(value, Enum):
            value = value.value
        return value if value is None or value == {} or value == [] else str(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    if kind == "boolean":
        return value
    if kind == "blob":
        raw = value.encode("utf-8") if isinstance(value, str) else value
        return base64.b64encode(raw).strip().decode("utf-8")
    raise Unsupported(f"{shape.name} is a {kind}")


Reply = tuple[int, dict[str, str], str]
"""Status code, headers and body, as moto's handler returns them."""


def direct_reply(handler: Any, action_result: Any) -> Reply | None:
    """The reply `handler` (moto's DynamoHandler, serving one request) would serialize for
    `action_result`, encoded by `encode`; None when it is moto's to encode."""
    result = action_result.result
    if (
        not isinstance(result, dict)
        # Subclasses (paginated results) change the reply before serializing it.
        or type(action_result).execute_result is not ActionResult.execute_result
        or handler.RESPONSE_KEY_PATH_TO_TRANSFORMER
        or settings.PRETTIFY_RESPONSES
    ):
        return None
    service = get_service_model(handler.boto3_service_name)
    operation = service.operation_model(handler._get_action())
    output = operation.output_shape
    try:
        body = "{}" if output is None else json.dumps(encode(result, output))
    except Unsupported:
        return None
    version = service.metadata.get("jsonVersion", "1.0")
    headers = {"Content-Type": f"application/x-amz-json-{version}"}
    headers.update(handler.response_headers)
    return operation.http.get("responseCode", 200), headers, body


def install() -> bool:
    """Makes moto's DynamoDB handler reply through `direct_reply` where it can; False (and
    nothing changed) when this moto does not serialize replies the way this module expects."""
    moto_serialized = getattr(DynamoHandler, "serialized", None)
    if moto_serialized is None:
        return False
    if getattr(moto_serialized, "moto_serialized", None) is not None:
        return True  # installed already

    def serialized(self: Any, action_result: Any) -> Any:
        reply = direct_reply(self, action_result)
        return moto_serialized(self, action_result) if reply is None else reply

    serialized.moto_serialized = moto_serialized  # type: ignore[attr-defined]
    setattr(DynamoHandler, "serialized", serialized)  # noqa: B010 (mypy: no method assignment)
    return True
