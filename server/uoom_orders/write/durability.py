"""What the service assumes of PostgreSQL's durability, checked at start.

An acknowledged write must survive a crash of PostgreSQL. With `synchronous_commit=off` a
commit is acknowledged (and visible, so the relay may publish its event) before its WAL is
flushed: a crash then loses it while the read model and every near cache keep it. With
`fsync=off` a crash of the machine (not of PostgreSQL alone) can lose or corrupt the cluster.
The service keeps running either way — both are legitimate for a throwaway cluster — but says
so in the log and in `postgres_durability_setting_safe`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from uoom_orders.observability import metrics

_log = logging.getLogger(__name__)

# Every value but "off" waits at least for the local WAL flush before acknowledging.
_UNSAFE = {"synchronous_commit": {"off"}, "fsync": {"off"}}
_CONSEQUENCE = {
    "synchronous_commit": "a PostgreSQL crash can lose acknowledged writes whose events "
    "were already published",
    "fsync": "a crash of the machine can lose acknowledged writes or corrupt the cluster",
}


@dataclass(frozen=True, slots=True)
class DurabilitySetting:
    """One server setting the durability contract depends on."""

    name: str
    value: str

    @property
    def safe(self) -> bool:
        return self.value not in _UNSAFE[self.name]


async def check_durability(pool: asyncpg.Pool) -> list[DurabilitySetting]:
    """Reads the settings, exports them as metrics and warns about each unsafe one."""
    settings = []
    async with pool.acquire() as conn:
        for name in _UNSAFE:
            value = str(await conn.fetchval("SELECT current_setting($1)", name))
            settings.append(DurabilitySetting(name, value))
    for setting in settings:
        metrics.POSTGRES_DURABILITY.labels(setting=setting.name).set(1 if setting.safe else 0)
        if not setting.safe:
            _log.warning(
                "PostgreSQL runs with %s=%s: %s (the service assumes it is on)",
                setting.name,
                setting.value,
                _CONSEQUENCE[setting.name],
            )
    return settings
