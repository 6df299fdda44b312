"""`python -m uoom_orders_dax --dynamodb-endpoint URL`: serve DAX's protocol until SIGINT or
SIGTERM, after printing the address it listens on (one line per node, leader first)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from uoom_orders_dax.server import DaxServer
from uoom_orders_dax.settings import DEFAULT_TTL_SECONDS, DaxSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_dax",
        description="A DAX-protocol endpoint (item and query caches) in front of DynamoDB.",
    )
    parser.add_argument("--dynamodb-endpoint", required=True, help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--nodes", type=int, default=1, help="nodes behind discovery")
    parser.add_argument("--item-ttl-seconds", type=float, default=DEFAULT_TTL_SECONDS)
    parser.add_argument("--query-ttl-seconds", type=float, default=DEFAULT_TTL_SECONDS)
    parser.add_argument("--region", default="us-east-1")
    return parser


async def _serve(settings: DaxSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with DaxServer(settings) as server:
        for node in server.nodes:
            host = f"[{node.host}]" if ":" in node.host else node.host
            print(f"dax://{host}:{node.port}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        settings = DaxSettings(
            dynamodb_endpoint=options.dynamodb_endpoint,
            host=options.host,
            port=options.port,
            nodes=options.nodes,
            item_ttl_seconds=options.item_ttl_seconds,
            query_ttl_seconds=options.query_ttl_seconds,
            region=options.region,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    asyncio.run(_serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
