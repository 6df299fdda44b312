"""Configuration: every setting declared once (`settings.py`), read from the environment in
one place; a bad value stops the start and names the variable."""

from uoom_orders.config.declaration import ConfigError
from uoom_orders.config.parsers import READ_TIER_NAMES, ROLE_NAMES
from uoom_orders.config.settings import Settings, declarations, read_setting

__all__ = [
    "READ_TIER_NAMES",
    "ROLE_NAMES",
    "ConfigError",
    "Settings",
    "declarations",
    "read_setting",
]
