"""Creating the service's Kafka topics, idempotently (for `dev`, tests and first deploys)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from uoom_orders.kafka_clients import kafka_admin

_log = logging.getLogger(__name__)

EVENT_TOPIC_PARTITIONS = 6
"""Partitions of the order-event topic.

Partitions bound the projector group's parallelism, and every API replica's near cache tails
all of them, so each one costs every replica a fetch loop. Six lets 1, 2, 3 or 6 projector
consumers share the load evenly and is far above what one relay (one ordered producer) fills;
it is set once because adding partitions later moves keys, and with them per-order order.
"""

DEAD_LETTER_TOPIC_PARTITIONS = 1
"""Dead letters are rare and read by people: one partition keeps them in one ordered list."""


async def ensure_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    replication_factor: int = 1,
    *,
    request_timeout_ms: int = 10_000,
) -> list[str]:
    """Creates the topics (name → partitions) that do not exist; returns the names created.

    Existing topics are left alone; one with a different partition count is logged as a
    warning, since changing it would remap keys.
    """
    if not topics:
        return []
    admin = kafka_admin(
        bootstrap_servers, client_id="uoom-orders-topics", request_timeout_ms=request_timeout_ms
    )
    await admin.start()
    try:
        try:
            response = await admin.create_topics(
                [
                    NewTopic(name, partitions, replication_factor)
                    for name, partitions in topics.items()
                ]
            )
        except TopicAlreadyExistsError:
            # Some versions raise for a single existing topic instead of reporting it.
            created: list[str] = []
            existing = list(topics)
        else:
            created, existing = _created_and_existing(response.topic_errors)
        if existing:
            await _warn_on_partition_mismatch(admin, {name: topics[name] for name in existing})
    finally:
        await admin.close()
    if created:
        _log.info("created Kafka topics %s", ", ".join(created))
    return created


def _created_and_existing(topic_errors: list[tuple[object, ...]]) -> tuple[list[str], list[str]]:
    created: list[str] = []
    existing: list[str] = []
    failed: list[str] = []
    for entry in topic_errors:
        # (name, error_code) in v0, (name, error_code, error_message) from v1 on.
        name, code = str(entry[0]), int(entry[1])  # type: ignore[call-overload]
        if code == 0:
            created.append(name)
        elif code == TopicAlreadyExistsError.errno:
            existing.append(name)
        else:
            failed.append(f"{name}: {for_code(code).__name__}")
    if failed:
        raise KafkaError(f"cannot create Kafka topics ({'; '.join(failed)})")
    return created, existing


async def _warn_on_partition_mismatch(admin: AIOKafkaAdminClient, wanted: dict[str, int]) -> None:
    for topic in await admin.describe_topics(list(wanted)):
        name = topic["topic"]
        partitions = len(topic["partitions"])
        if name in wanted and partitions != wanted[name]:
            _log.warning(
                "Kafka topic %s exists with %d partitions, not %d; left as it is",
                name,
                partitions,
                wanted[name],
            )
