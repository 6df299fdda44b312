"""The CLI's one-shot commands: migrations, read-model tables, rebuild, dead letters."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import UUID

import aioboto3
import asyncpg

from uoom_orders.config import Settings
from uoom_orders.config.components import dynamodb_client_for
from uoom_orders.dynamodb.tables import create_tables
from uoom_orders.projector.dead_letters import list_dead_letters, replay_dead_letters
from uoom_orders.projector.reconcile import RECONCILE_LOCK_KEY, Progress, Reconciler
from uoom_orders.write.migrate import apply_migrations


async def prepare_stores(
    settings: Settings, session: aioboto3.Session | None = None
) -> tuple[list[str], list[str]]:
    """What `serve` expects to exist: the PostgreSQL schema (pending migrations applied) and,
    when a DynamoDB endpoint is set, both read-model tables. Idempotent; returns the
    migrations applied and the tables ready (tools that start a stack call this)."""
    applied = await apply_migrations(settings.database_url)
    tables: list[str] = []
    if settings.dynamodb_endpoint is not None:
        async with dynamodb_client_for(settings, session) as client:
            tables = await create_tables(client, settings.dynamodb_table_prefix)
    return applied, tables


async def migrate(settings: Settings) -> int:
    applied = await apply_migrations(settings.database_url)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


async def create_read_model_tables(settings: Settings) -> int:
    async with dynamodb_client_for(settings) as client:
        created = await create_tables(client, settings.dynamodb_table_prefix)
    print(f"read-model tables ready: {', '.join(created)}")
    return 0


def _progress(label: str) -> Progress:
    def line(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        print(f"\r{label} [{bar}] {done}/{total}", end=end, file=sys.stderr, flush=True)

    return line


@asynccontextmanager
async def _one_pass_at_a_time(pool: asyncpg.Pool, *, wait: bool) -> AsyncIterator[None]:
    """Holds the lock the projectors' scheduled passes take, so that two passes never repair
    the same items at once; a dry run, which writes nothing, does not wait for it."""
    if not wait:
        yield
        return
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RECONCILE_LOCK_KEY):
            print("a reconciliation pass is running; waiting for it", file=sys.stderr)
            await conn.execute("SELECT pg_advisory_lock($1)", RECONCILE_LOCK_KEY)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", RECONCILE_LOCK_KEY)


async def reconcile(
    settings: Settings,
    *,
    dry_run: bool = False,
    customer_id: UUID | None = None,
    since: datetime | None = None,
    label: str = "reconcile",
    show: int = 50,
) -> int:
    """One reconciliation pass; prints what differed and what was repaired.

    Exit status: 0 when the read model matched or was repaired, 1 when differences remain
    (a dry run that found some, or orders the read model refused).
    """
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=8)
    try:
        async with dynamodb_client_for(settings) as client:
            reconciler = Reconciler(
                pool,
                client,
                settings.dynamodb_table_prefix,
                ttl_hours=settings.order_cache_ttl_hours,
            )
            async with _one_pass_at_a_time(pool, wait=not dry_run):
                report = await reconciler.run(
                    dry_run=dry_run,
                    customer_id=customer_id,
                    since=since,
                    progress=_progress(label),
                )
    finally:
        await pool.close()
    print(
        f"{label}: {report.checked} orders checked and {report.scanned} items scanned in "
        f"{report.seconds:.1f}s ({report.orders_per_second:.0f} orders/s); "
        f"{len(report.differences)} differences"
        + (
            ""
            if dry_run
            else f", {report.repaired} repaired, {report.raced} raced by the "
            f"projector, {report.corrections} corrections published"
        )
    )
    for (table, kind), count in sorted(report.counts().items()):
        print(f"  {table:<14} {kind:<8} {count}")
    for difference in report.differences[:show]:
        print(
            f"  {difference.order_id}  {difference.table}  {difference.kind.value}: item "
            f"version {difference.item_version}, PostgreSQL {difference.source_version}"
        )
    if len(report.differences) > show:
        print(f"  … and {len(report.differences) - show} more")
    for order_id in report.rejected:
        print(f"  refused by the read model: {order_id}")
    return 1 if report.rejected or (dry_run and report.differences) else 0


async def rebuild(settings: Settings, customer_id: UUID | None, since: datetime | None) -> int:
    """A reconciliation pass over the selected orders: what is missing, older, newer than
    PostgreSQL or otherwise different is written from PostgreSQL."""
    return await reconcile(settings, customer_id=customer_id, since=since, label="rebuild")


async def dead_letters_list(settings: Settings, limit: int) -> int:
    letters = await list_dead_letters(
        settings.require_kafka("the dead-letter commands"), settings.dead_letter_topic, limit
    )
    for letter in letters:
        key = letter.key.decode(errors="replace") if letter.key else "-"
        print(
            f"{letter.failed_at}  {letter.source_topic}[{letter.source_partition}]"
            f"@{letter.source_offset}  key={key}  error={letter.error}"
        )
    print(f"{len(letters)} dead letter(s) in {settings.dead_letter_topic}")
    return 0


async def dead_letters_replay(settings: Settings, limit: int | None) -> int:
    count = await replay_dead_letters(
        settings.require_kafka("the dead-letter commands"),
        settings.dead_letter_topic,
        settings.kafka_topic,
        limit=limit,
        idempotent_producer=settings.kafka_idempotent_producer,
    )
    print(f"replayed {count} dead letter(s) to {settings.kafka_topic}")
    return 0
