"""The relay built from Settings: the variables it needs and the values it takes."""

from __future__ import annotations

import pytest

from tests.support.memory_publisher import InMemoryEventPublisher
from uoom_orders.config import ConfigError, Settings
from uoom_orders.config.components import outbox_relay, relay_config
from uoom_orders.relay import KafkaEventPublisher, RelayConfig

DATABASE_URL = "postgresql://u@127.0.0.1:5432/orders"
_BASE = vars(relay_config(Settings.from_env({"DATABASE_URL": DATABASE_URL})))


def test_without_kafka_the_relay_names_the_missing_variable() -> None:
    settings = Settings.from_env({"DATABASE_URL": DATABASE_URL})
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS"):
        outbox_relay(settings)


def test_with_kafka_it_publishes_to_the_configured_topic() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": DATABASE_URL,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
            "KAFKA_TOPIC": "orders.events",
            "KAFKA_IDEMPOTENT_PRODUCER": "false",
        }
    )
    relay = outbox_relay(settings)
    publisher = relay.publisher
    assert isinstance(publisher, KafkaEventPublisher)
    assert publisher.topic == "orders.events"


def test_a_given_publisher_is_used() -> None:
    settings = Settings.from_env({"DATABASE_URL": DATABASE_URL})
    publisher = InMemoryEventPublisher()
    assert outbox_relay(settings, publisher).publisher is publisher


@pytest.mark.parametrize(
    "options",
    [
        {"batch_size": 0},
        {"poll_interval": 0},
        {"purge_interval": -1},
        {"backoff_initial": 2.0, "backoff_max": 1.0},
    ],
)
def test_bad_options_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must be positive|backoff"):
        RelayConfig(**(_BASE | options))
