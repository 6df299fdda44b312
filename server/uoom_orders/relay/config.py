"""What a relay needs to know; built from the settings in one place (config/components.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RelayConfig:
    """The first four come from the settings and have no default here; the rest are tuning
    knobs with sound defaults (tests shorten them)."""

    database_url: str
    batch_size: int
    poll_interval: float
    retention: timedelta
    purge_interval: float = 60.0
    purge_chunk_size: int = 5000
    # LISTEN/NOTIFY wakes the relay at once; without it, rows wait for the next poll.
    listen: bool = True
    # Publish rows only once every older transaction has ended (see outbox_relay.py).
    respect_xid_horizon: bool = True
    backoff_initial: float = 0.05
    backoff_max: float = 1.0
    held_back_warning_after: float = 10.0
    application_name: str = "uoom-outbox-relay"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.purge_chunk_size < 1:
            raise ValueError("batch_size and purge_chunk_size must be positive")
        if self.poll_interval <= 0 or self.purge_interval <= 0:
            raise ValueError("poll_interval and purge_interval must be positive")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError("need 0 < backoff_initial <= backoff_max")
