"""The outbox relay's cycle over an outbox full of published rows: from its position, and over
every unpublished row.

``python -m uoom_orders_bench.outbox_claims [--published 0,100000,500000] [--rounds 5]``

Marking a row published leaves a dead entry in the outbox's partial indexes until VACUUM
removes it, and autovacuum comes only once a fifth of the table has changed (its default): a
day's retention at 100 events a second holds up to 1.7 million such entries. A claim over every
unpublished row walks them from the oldest; a claim from the relay's position
(`outbox_store.ClaimPosition`) starts past them. For each count of published rows, on a
database of its own with autovacuum off on the outbox (so none is removed) and ANALYZE run (as
autovacuum's analyze would, as rows come in), this times the relay's cycle when there is
nothing to claim — lock and claim, mark, commit, count (`PostgresOutboxStore.claim` and
`.stats`, the relay's own code) — both ways, interleaved, `--cycles` cycles a round; it prints
the medians of the rounds. It starts the local stack's PostgreSQL unless given
`--admin-database-url`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from urllib.parse import urlsplit

import asyncpg

from uoom_orders.relay.outbox_store import PostgresOutboxStore
from uoom_orders.write.migrate import apply_migrations
from uoom_orders_devstack import LocalStack

_PAYLOAD_BYTES = 300  # about an encoded OrderEvent carrying its order
_BATCH = 100  # the relay's default batch size


def _never_due() -> float:
    """The position store's clock: its once-a-minute claim over every row is left out here
    (the other side measures that claim)."""
    return 0.0


@asynccontextmanager
async def _scratch_database(admin_url: str | None) -> AsyncIterator[str]:
    """A fresh, migrated database (on the local stack's PostgreSQL when no `admin_url`),
    dropped afterwards."""
    async with AsyncExitStack() as resources:
        if admin_url is None:
            stack = LocalStack(dax=False)
            resources.callback(stack.stop)
            endpoints = await asyncio.to_thread(stack.start)
            admin_url = endpoints.admin_database_url
        name = f"uoom_claims_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f"CREATE DATABASE {name}")
        finally:
            await admin.close()

        async def drop() -> None:
            conn = await asyncpg.connect(admin_url)
            try:
                await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            finally:
                await conn.close()

        resources.push_async_callback(drop)
        database_url = urlsplit(admin_url)._replace(path=f"/{name}").geturl()
        await apply_migrations(database_url)
        yield database_url


async def _cycle(store: PostgresOutboxStore, conn: asyncpg.Connection) -> None:
    async with store.claim(conn, _BATCH) as batch:
        assert batch is not None
        await batch.mark_published()
    await store.stats(conn)


async def _median_cycle_ms(
    store: PostgresOutboxStore, conn: asyncpg.Connection, cycles: int
) -> float:
    times = []
    for _ in range(cycles):
        started = time.perf_counter()
        await _cycle(store, conn)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def measure(
    published: Sequence[int], rounds: int, cycles: int, admin_url: str | None
) -> list[tuple[int, float, float]]:
    """(published rows, median ms per cycle over every row, from the position) per count."""
    results = []
    async with _scratch_database(admin_url) as database_url:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("ALTER TABLE outbox SET (autovacuum_enabled = false)")
            from_position = PostgresOutboxStore(clock=_never_due)
            every_row = PostgresOutboxStore()
            inserted = 0
            for count in sorted(published):
                # The rows up to `count`, published at once, and one more the position store
                # publishes: the relay's state after it published those (its position is past
                # them).
                await conn.execute(
                    """
                    INSERT INTO outbox (event_id, order_id, event_type, version, payload)
                    SELECT gen_random_uuid(), gen_random_uuid(), 'ORDER_STATUS_CHANGED', 2,
                           decode(repeat('ab', $2), 'hex')
                    FROM generate_series(1, $1)
                    """,
                    max(0, count - inserted) + 1,
                    _PAYLOAD_BYTES,
                )
                await conn.execute(
                    "UPDATE outbox SET published_at = now() "
                    "WHERE published_at IS NULL AND id < (SELECT max(id) FROM outbox)"
                )
                inserted = max(inserted, count) + 1
                await conn.execute("ANALYZE outbox")
                await _cycle(from_position, conn)
                assert from_position.position is not None
                every: list[float] = []
                positioned: list[float] = []
                for round_number in range(rounds):
                    sides = [(every_row, every), (from_position, positioned)]
                    for store, into in sides if round_number % 2 else reversed(sides):
                        into.append(await _median_cycle_ms(store, conn, cycles))
                results.append((count, statistics.median(every), statistics.median(positioned)))
                _say(
                    f"{count:,} published rows: {results[-1][1]:.2f} ms over every row, "
                    f"{results[-1][2]:.2f} ms from the position"
                )
        finally:
            await conn.close()
    return results


def render(results: Sequence[tuple[int, float, float]]) -> str:
    lines = [
        "the relay's cycle with nothing to claim (claim, mark, commit, count), median ms",
        f"{'published rows not vacuumed':>28}  {'over every row':>14}  "
        f"{'from the position':>17}  {'ratio':>6}",
    ]
    for count, every, positioned in results:
        lines.append(
            f"{count:>28,}  {every:>14.2f}  {positioned:>17.2f}  {every / positioned:>5.2f}x"
        )
    return "\n".join(lines)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_bench.outbox_claims",
        description="The outbox relay's claim cycle over published rows: from its position "
        "and over every unpublished row.",
    )
    add = parser.add_argument
    add(
        "--published",
        default="0,100000,500000",
        help="counts of published rows to measure at, comma separated (0,100000,500000)",
    )
    add("--rounds", type=int, default=5, help="interleaved rounds per count (5)")
    add("--cycles", type=int, default=200, help="cycles per round and side (200)")
    add("--admin-database-url", help="a PostgreSQL to create the scratch database on")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    published = [int(value) for value in args.published.split(",") if value.strip()]
    results = asyncio.run(measure(published, args.rounds, args.cycles, args.admin_database_url))
    print(f"command: python -m uoom_orders_bench.outbox_claims {' '.join(sys.argv[1:])}")
    print(f"load average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
