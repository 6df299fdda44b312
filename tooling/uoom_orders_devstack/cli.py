"""`python -m uoom_orders_devstack`: the local stack and every role of the service, on loopback,
in the foreground until Ctrl-C (what `bash scripts/dev.sh` runs)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from uoom_orders.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_devstack",
        description="start a local stack (PostgreSQL, Kafka-protocol broker, DynamoDB endpoint) "
        "and every role of the service on loopback; Ctrl-C stops everything",
    )
    parser.add_argument("--port", type=int, default=50051, help="gRPC port (default 50051)")
    parser.add_argument(
        "--metrics-port", type=int, default=9464, help="Prometheus port (default 9464, 0: off)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import uvloop

    from uoom_orders.config import read_setting
    from uoom_orders.observability.logs import configure_logging
    from uoom_orders_devstack.session import run_dev_session

    try:
        configure_logging(read_setting("log_level"), read_setting("log_format") or "text")
        code: int = uvloop.run(run_dev_session(grpc_port=args.port, metrics_port=args.metrics_port))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
