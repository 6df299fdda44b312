"""A DAX-protocol endpoint for the local stack: amazon-dax-client's wire protocol (CBOR over
TCP) in front of a DynamoDB endpoint, with DAX's item and query caches.

`python -m uoom_orders_dax --dynamodb-endpoint URL` runs one; `DaxEndpoint` runs one on a
thread of its own for tests; `DaxServer` is the async context manager underneath.
"""

from __future__ import annotations

from uoom_orders_dax.endpoint import DaxEndpoint
from uoom_orders_dax.server import DaxServer
from uoom_orders_dax.settings import DEFAULT_TTL_SECONDS, DaxSettings

__all__ = ["DEFAULT_TTL_SECONDS", "DaxEndpoint", "DaxServer", "DaxSettings"]
