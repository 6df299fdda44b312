"""The CLI's one-shot commands: migrations, read-model tables, rebuild, dead letters."""

from __future__ import annotations

import sys
from datetime import datetime
from uuid import UUID

import asyncpg

from uoom_orders.config import Settings
from uoom_orders.projector.dead_letters import list_dead_letters, replay_dead_letters
from uoom_orders.projector.rebuild import rebuild_read_model
from uoom_orders.readmodel.client import dynamodb_client_from_settings
from uoom_orders.readmodel.tables import create_tables
from uoom_orders.readmodel.writer import ReadModelWriter
from uoom_orders.write.migrate import apply_migrations


async def migrate(settings: Settings) -> int:
    applied = await apply_migrations(settings.database_url)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


async def create_read_model_tables(settings: Settings) -> int:
    async with dynamodb_client_from_settings(settings) as client:
        created = await create_tables(client, settings.dynamodb_table_prefix)
    print(f"read-model tables ready: {', '.join(created)}")
    return 0


def _progress_line(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    bar = "#" * filled + "-" * (width - filled)
    end = "\n" if done >= total else ""
    print(f"\rrebuild [{bar}] {done}/{total}", end=end, file=sys.stderr, flush=True)


async def rebuild(settings: Settings, customer_id: UUID | None, since: datetime | None) -> int:
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
    try:
        async with dynamodb_client_from_settings(settings) as client:
            stats = await rebuild_read_model(
                pool,
                ReadModelWriter(client, settings.dynamodb_table_prefix),
                customer_id=customer_id,
                since=since,
                progress=_progress_line,
                ttl_hours=settings.order_cache_ttl_hours,
            )
    finally:
        await pool.close()
    print(
        f"rebuilt {stats.orders} orders in {stats.seconds:.1f}s: {stats.applied} written, "
        f"{stats.stale} already current, {len(stats.rejected)} refused"
    )
    for order_id in stats.rejected:
        print(f"  refused by the read model: {order_id}")
    return 1 if stats.rejected else 0


def _require_kafka(settings: Settings) -> str:
    from uoom_orders.config import ConfigError

    if settings.kafka_bootstrap_servers is None:
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS is required for dead-letter commands")
    return settings.kafka_bootstrap_servers


async def dead_letters_list(settings: Settings, limit: int) -> int:
    letters = await list_dead_letters(_require_kafka(settings), settings.dead_letter_topic, limit)
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
        _require_kafka(settings),
        settings.dead_letter_topic,
        settings.kafka_topic,
        limit=limit,
        idempotent_producer=settings.kafka_idempotent_producer,
    )
    print(f"replayed {count} dead letter(s) to {settings.kafka_topic}")
    return 0
