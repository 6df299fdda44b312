"""`python -m uoom_orders_devstack`: the local stack and every role of the service, on loopback,
in the foreground until Ctrl-C (what `bash scripts/dev.sh` runs)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from uoom_orders.config import ConfigError
from uoom_orders_devstack.dax_endpoint import DEPLOYED_ITEM_TTL_SECONDS
from uoom_orders_devstack.processes import StackStartError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_devstack",
        description="start a local stack (PostgreSQL, Kafka-protocol broker, DynamoDB endpoint, "
        "DAX-protocol endpoint) and every role of the service on loopback; Ctrl-C stops "
        "everything",
    )
    parser.add_argument("--port", type=int, default=50051, help="gRPC port (default 50051)")
    parser.add_argument(
        "--metrics-port", type=int, default=9464, help="Prometheus port (default 9464, 0: off)"
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        type=_env_pair,
        metavar="NAME=VALUE",
        help="a setting of the service, given last (repeatable), e.g. READ_TIERS=dax,dynamodb",
    )
    parser.add_argument(
        "--dax-item-ttl-seconds",
        type=float,
        default=DEPLOYED_ITEM_TTL_SECONDS,
        help="the DAX endpoint's item cache TTL (default: the deployment's, "
        f"{DEPLOYED_ITEM_TTL_SECONDS:g} s; DAX's own default is 300)",
    )
    parser.add_argument(
        "--dynamodb-admin",
        action="store_true",
        help="also start dynamodb-admin (npm; installed under .tmp/ on first use) on the local "
        "DynamoDB endpoint and print its URL",
    )
    return parser


def _env_pair(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {raw!r}")
    return name, value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import uvloop

    from uoom_orders.config import read_setting
    from uoom_orders.observability.logs import configure_logging
    from uoom_orders_devstack.session import run_dev_session

    try:
        configure_logging(read_setting("log_level"), read_setting("log_format") or "text")
        code: int = uvloop.run(
            run_dev_session(
                grpc_port=args.port,
                metrics_port=args.metrics_port,
                service_env=dict(args.service_env),
                dax_item_ttl_seconds=args.dax_item_ttl_seconds,
                dynamodb_admin=args.dynamodb_admin,
            )
        )
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except StackStartError as error:
        print(f"the local stack did not start: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code
