"""The gRPC service config that makes the channel retry UNAVAILABLE calls."""

from __future__ import annotations

import json

SERVICE_NAME = "uoom.orders.v1.OrderService"

# gRPC clamps maxAttempts to 5 (the first attempt included); asking for more would be
# silently ignored, so the client refuses it instead.
MAX_ATTEMPTS_LIMIT = 5

_INITIAL_BACKOFF = "0.1s"
_MAX_BACKOFF = "2s"
_BACKOFF_MULTIPLIER = 2.0


def service_config_json(max_attempts: int) -> str:
    """A service config for OrderService: up to ``max_attempts`` tries on UNAVAILABLE.

    Every RPC is safe to retry: reads have no effect, and CreateOrder and UpdateOrderStatus
    carry a request_id for which the server answers a repeat with the first response
    (AIP-155). ``max_attempts`` of 1 turns retries off.
    """
    if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
        raise ValueError(f"max_attempts must be 1..{MAX_ATTEMPTS_LIMIT}, got {max_attempts}")
    method_config: dict[str, object] = {"name": [{"service": SERVICE_NAME}]}
    if max_attempts > 1:
        method_config["retryPolicy"] = {
            "maxAttempts": max_attempts,
            "initialBackoff": _INITIAL_BACKOFF,
            "maxBackoff": _MAX_BACKOFF,
            "backoffMultiplier": _BACKOFF_MULTIPLIER,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return json.dumps({"methodConfig": [method_config]})
