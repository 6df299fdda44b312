"""Command line: `python -m uoom_orders serve|migrate|dev`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from uoom_orders.config import ConfigError, Settings

T = TypeVar("T")


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def _serve(_: argparse.Namespace) -> int:
    from uoom_orders.bootstrap import serve_until_signalled

    settings = Settings.from_env()
    _configure_logging(settings.log_level)
    _run(serve_until_signalled(settings))
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from uoom_orders.write.migrate import apply_migrations

    settings = Settings.from_env()
    _configure_logging(settings.log_level)
    applied = _run(apply_migrations(settings.database_url))
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


def _dev(args: argparse.Namespace) -> int:
    from uoom_orders.devstack.session import run_dev_session

    _configure_logging(os.environ.get("LOG_LEVEL", "INFO").upper())
    return _run(run_dev_session(grpc_port=args.port))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    import uvloop

    return uvloop.run(coro)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uoom-orders", description="Order status service (gRPC, CQRS)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve", help="run the gRPC server (configured by environment variables)"
    ).set_defaults(func=_serve)
    commands.add_parser(
        "migrate", help="apply pending PostgreSQL migrations to DATABASE_URL"
    ).set_defaults(func=_migrate)
    dev = commands.add_parser(
        "dev",
        help="start a local stack (PostgreSQL, Kafka-protocol broker, DynamoDB endpoint) "
        "and the service on loopback; Ctrl-C stops everything",
    )
    dev.add_argument("--port", type=int, default=50051, help="gRPC port (default 50051)")
    dev.set_defaults(func=_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
