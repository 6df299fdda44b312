"""Configuration: defaults, and bad values named in the error."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from uoom_orders.config import ConfigError, Settings, declarations
from uoom_orders.config.table import replace_table

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


# --- one config story -------------------------------------------------------------------------

_ROOT = Path(__file__).resolve().parents[2]
_PACKAGE = _ROOT / "server" / "uoom_orders"


def test_the_readme_table_is_made_from_the_declarations() -> None:
    readme = (_ROOT / "README.md").read_text()
    assert replace_table(readme) == readme, "run `python scripts/settings_table.py` and commit"


def test_every_setting_is_declared_once_with_what_it_accepts_and_means() -> None:
    names = [declaration.env for _, declaration in declarations()]
    assert len(names) == len(set(names))
    for _, declaration in declarations():
        assert declaration.accepts, declaration.env
        assert declaration.meaning, declaration.env


def test_only_the_settings_read_the_environment() -> None:
    readers = []
    for path in _PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                readers.append(str(path.relative_to(_PACKAGE)))
    assert sorted(set(readers)) == ["config/settings.py"]


def test_components_never_import_the_settings() -> None:
    allowed = {"config", "bootstrap.py", "__main__.py", "admin.py", "benchmark", "devstack"}
    importers = []
    for path in _PACKAGE.rglob("*.py"):
        relative = path.relative_to(_PACKAGE)
        if relative.parts[0] in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                in (
                    "uoom_orders.config",
                    "uoom_orders.config.settings",
                )
                and any(alias.name == "Settings" for alias in node.names)
            ):
                importers.append(str(relative))
    assert importers == []
