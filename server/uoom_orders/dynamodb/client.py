"""The aioboto3 DynamoDB client the read model is written and read with, configured once.

Nothing here connects at import; `dynamodb_client` opens a client inside `async with`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import botocore
from botocore.config import Config

from uoom_orders.observability.metrics import DYNAMODB_THROTTLES

# Error codes DynamoDB answers when a request exceeds throughput or a request-rate limit.
THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
_THROTTLE_HANDLER_ID = "uoom-orders-count-dynamodb-throttles"


def dynamodb_config(*, max_retries: int, timeout_ms: int, max_pool_connections: int = 64) -> Config:
    """botocore settings: `max_retries` retries in standard mode (throttles, 5xx, connection
    errors, with jittered backoff) and `timeout_ms` for connecting and for each read.

    The pool is larger than botocore's 10 because the projector writes two tables for up to
    32 orders at once.

    botocore's check of each request against the service model before sending it is off:
    DynamoDB checks every request itself (ValidationException or SerializationException,
    which the writer takes as a rejected item, as it took botocore's ParamValidationError),
    every item the service sends comes from one codec (dynamodb/items.py, property-tested),
    and the check walks every attribute of every item: a sixth of the client's CPU per
    PutItem, measured with py-spy.

    The User-Agent is the service's own (`user_agent`, botocore's documented override),
    which AWS logs (CloudTrail) show as the caller. botocore's default one is rebuilt from a
    dozen components, each sanitised, twice per request: about a tenth of the client's CPU
    per PutItem (cProfile).
    """
    seconds = timeout_ms / 1000
    return Config(
        user_agent=_user_agent(),
        retries={"max_attempts": max_retries, "mode": "standard"},
        connect_timeout=seconds,
        read_timeout=seconds,
        max_pool_connections=max_pool_connections,
        parameter_validation=False,
    )


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("uoom-orders")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"uoom-orders/{version} botocore/{botocore.__version__}"


def count_throttles(client: Any) -> None:
    """Counts every throttled attempt in DYNAMODB_THROTTLES{operation}, botocore's own retries
    included (an exception that surfaces is only the last of them). Idempotent per client."""
    client.meta.events.register(
        "response-received.dynamodb", _on_response, unique_id=_THROTTLE_HANDLER_ID
    )


def _on_response(parsed_response: Any = None, event_name: str = "", **_: Any) -> None:
    if not isinstance(parsed_response, dict):
        return
    code = parsed_response.get("Error", {}).get("Code")
    if code in THROTTLE_CODES:
        # event_name is "response-received.dynamodb.<Operation>".
        DYNAMODB_THROTTLES.labels(operation=event_name.rsplit(".", 1)[-1]).inc()


@contextlib.asynccontextmanager
async def dynamodb_client(
    *,
    region: str,
    endpoint: str | None = None,
    max_retries: int = 3,
    timeout_ms: int = 5000,
    session: aioboto3.Session | None = None,
) -> AsyncIterator[Any]:
    """An aioboto3 low-level DynamoDB client with throttle counting; closed on exit.

    `endpoint` None means AWS itself; credentials come from `session` or the environment.
    """
    session = session or aioboto3.Session()
    config = dynamodb_config(max_retries=max_retries, timeout_ms=timeout_ms)
    async with session.client(
        "dynamodb", region_name=region, endpoint_url=endpoint, config=config
    ) as client:
        count_throttles(client)
        yield client
