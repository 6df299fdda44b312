"""The endpoint's settings, declared once (the command line and DaxEndpoint build them)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TTL_SECONDS = 300.0  # DAX's default for both caches: 5 minutes


@dataclass(frozen=True)
class DaxSettings:
    """Where DynamoDB is, where to listen, and how long the caches keep what they hold.

    `port` 0 picks a free port. With `nodes` > 1 the endpoint listens once per node (on
    `port`, `port + 1`, … or on free ports) and discovery answers all of them, the first as
    the leader. Credentials only have to satisfy the DynamoDB endpoint (moto takes any).
    """

    dynamodb_endpoint: str
    host: str = "127.0.0.1"
    port: int = 0
    nodes: int = 1
    item_ttl_seconds: float = DEFAULT_TTL_SECONDS
    query_ttl_seconds: float = DEFAULT_TTL_SECONDS
    item_cache_entries: int = 100_000
    query_cache_entries: int = 10_000
    region: str = "us-east-1"
    aws_access_key_id: str = "local"
    aws_secret_access_key: str = "local"  # moto ignores credentials

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError("nodes must be at least 1")
        if self.item_ttl_seconds < 0 or self.query_ttl_seconds < 0:
            raise ValueError("cache TTLs cannot be negative")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0..65535")

    def node_ports(self) -> tuple[int, ...]:
        if self.port == 0:
            return (0,) * self.nodes
        return tuple(self.port + i for i in range(self.nodes))
