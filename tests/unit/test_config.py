"""Configuration: defaults, and bad values named in the error."""

from __future__ import annotations

import pytest

from uoom_orders.config import ConfigError, Settings

BASE = {"DATABASE_URL": "postgresql://u@localhost:5432/orders"}


def test_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert settings.grpc_port == 50051
    assert settings.order_cache_ttl_hours == 72
    assert settings.dynamodb_table_prefix == "uoom-dev-"
    assert settings.dead_letter_topic == "uoom.orders.v1.order-events.dlq"


def test_database_url_is_required() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL is required"):
        Settings.from_env({})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://x"),
        ("GRPC_PORT", "70000"),
        ("GRPC_PORT", "abc"),
        ("DYNAMODB_ENDPOINT", "localhost:8000"),
        ("DYNAMODB_MAX_RETRIES", "-1"),
        ("DYNAMODB_TIMEOUT", "0"),
        ("ORDER_CACHE_TTL_HOURS", "0"),
        ("DAX_ENDPOINT", "http://dax:8111"),
        ("KAFKA_BOOTSTRAP_SERVERS", "no-port"),
        ("PAGE_TOKEN_SECRET", "short"),
        ("LOG_LEVEL", "LOUD"),
        ("KAFKA_IDEMPOTENT_PRODUCER", "maybe"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(BASE | {name: value})


def test_the_reference_dax_endpoint_form_is_accepted() -> None:
    settings = Settings.from_env(
        BASE | {"DAX_ENDPOINT": "dax-cluster.abc123.dax-clusters.us-east-1.amazonaws.com:8111"}
    )
    assert settings.dax_endpoint == (
        "dax://dax-cluster.abc123.dax-clusters.us-east-1.amazonaws.com:8111"
    )
