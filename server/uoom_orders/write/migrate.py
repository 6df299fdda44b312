"""Applies the versioned SQL migrations in `migrations/` to a PostgreSQL database."""

from __future__ import annotations

from importlib import resources

import asyncpg

# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK_KEY = 0x756F6F6D  # "uoom"


def _migration_files() -> list[tuple[str, str]]:
    folder = resources.files("uoom_orders.write.migrations")
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]


async def apply_migrations(dsn: str) -> list[str]:
    """Applies the migrations not yet applied, each in its own transaction; returns their names.

    Safe to run from several processes at once: an advisory lock serialises them.
    """
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied: list[str] = []
            for version, sql in _migration_files():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version) VALUES ($1)", version
                    )
                applied.append(version)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
    finally:
        await conn.close()
