"""Command line: `uoom-orders serve|migrate|create-tables|rebuild|reconcile|dead-letters`.

Only what works in the image. The local stack is development tooling outside this package:
`python -m uoom_orders_devstack` (tooling/)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from uoom_orders.config import ConfigError, Settings, parsers

T = TypeVar("T")


def _configure_logging(settings: Settings, default_format: str) -> None:
    """Root logging to stderr at LOG_LEVEL, as LOG_FORMAT says, else `default_format`."""
    from uoom_orders.observability.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format or default_format)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    import uvloop

    return uvloop.run(coro)


def _settings(default_log_format: str = "json") -> Settings:
    settings = Settings.from_env()
    _configure_logging(settings, default_log_format)
    return settings


def _roles(raw: str) -> tuple[str, ...]:
    try:
        return parsers.roles(raw)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"roles are {error}") from error


def _serve(args: argparse.Namespace) -> int:
    from uoom_orders.bootstrap import serve_until_signalled

    settings = _settings()
    return _run(serve_until_signalled(settings, args.roles or settings.service_roles))


def _migrate(_: argparse.Namespace) -> int:
    from uoom_orders import admin

    return _run(admin.migrate(_settings()))


def _create_tables(_: argparse.Namespace) -> int:
    from uoom_orders import admin

    return _run(admin.create_read_model_tables(_settings()))


def _rebuild(args: argparse.Namespace) -> int:
    from uoom_orders import admin

    return _run(admin.rebuild(_settings(), args.customer_id, args.since))


def _reconcile(args: argparse.Namespace) -> int:
    from uoom_orders import admin

    return _run(admin.reconcile(_settings(), dry_run=args.dry_run, show=args.show))


def _dead_letters(args: argparse.Namespace) -> int:
    from uoom_orders import admin

    if args.action == "list":
        return _run(admin.dead_letters_list(_settings(), args.limit))
    return _run(admin.dead_letters_replay(_settings(), args.limit))


def _aware_time(raw: str) -> datetime:
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2026-01-15T00:00:00Z")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uoom-orders", description="Order status service (gRPC, CQRS)."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="run the service's roles (configured by environment variables)"
    )
    serve.add_argument(
        "--roles",
        type=_roles,
        default=None,
        help="comma list of api, relay, projector (default: all, or SERVICE_ROLES)",
    )
    serve.set_defaults(func=_serve)

    commands.add_parser(
        "migrate", help="apply pending PostgreSQL migrations to DATABASE_URL"
    ).set_defaults(func=_migrate)
    commands.add_parser(
        "create-tables", help="create the DynamoDB read-model tables (idempotent)"
    ).set_defaults(func=_create_tables)

    rebuild = commands.add_parser(
        "rebuild",
        help="re-project the read model from PostgreSQL: write what is missing, older, newer "
        "or different (safe while projecting)",
    )
    rebuild.add_argument("--customer-id", type=UUID, help="only this customer's orders")
    rebuild.add_argument(
        "--since", type=_aware_time, help="only orders updated at or after this ISO time"
    )
    rebuild.set_defaults(func=_rebuild)

    reconcile = commands.add_parser(
        "reconcile",
        help="compare every order with both read-model tables, repair every difference from "
        "PostgreSQL and delete items of orders it does not have (safe while projecting)",
    )
    reconcile.add_argument(
        "--dry-run", action="store_true", help="print the differences, change nothing"
    )
    reconcile.add_argument(
        "--show", type=int, default=50, help="print at most this many differences (default 50)"
    )
    reconcile.set_defaults(func=_reconcile)

    dead = commands.add_parser("dead-letters", help="list or replay the projector's dead letters")
    dead.add_argument("action", choices=("list", "replay"))
    dead.add_argument("--limit", type=int, default=None, help="at most this many")
    dead.set_defaults(func=_dead_letters)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "action", None) == "list" and args.limit is None:
        args.limit = 100
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
