"""The watches' settings reach their components: the hub's limits and the server's keepalive."""

from __future__ import annotations

from uoom_orders.api.grpc_server import Keepalive
from uoom_orders.config import Settings
from uoom_orders.config.components import keepalive, watch_limits
from uoom_orders.watch import WatchLimits

BASE = {"DATABASE_URL": "postgresql://localhost/orders"}


def test_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert watch_limits(settings) == WatchLimits(max_streams=10_000, queue_limit=32)
    assert keepalive(settings) == Keepalive(time_seconds=30.0, timeout_seconds=10.0)


def test_the_environment_sets_them() -> None:
    settings = Settings.from_env(
        BASE
        | {
            "WATCH_MAX_STREAMS": "20000",
            "WATCH_QUEUE_LIMIT": "4",
            "GRPC_KEEPALIVE_TIME_SECONDS": "20",
            "GRPC_KEEPALIVE_TIMEOUT_SECONDS": "5",
        }
    )
    assert watch_limits(settings) == WatchLimits(max_streams=20_000, queue_limit=4)
    options = dict(keepalive(settings).options())
    assert options["grpc.keepalive_time_ms"] == 20_000
    assert options["grpc.keepalive_timeout_ms"] == 5_000
    # Pings go on while a connection's streams stay quiet (the default stops after two).
    assert options["grpc.http2.max_pings_without_data"] == 0
