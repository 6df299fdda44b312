"""How a setting is declared and read: its variable, what it accepts, its meaning."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Declaration:
    """How one setting is read and documented."""

    env: str
    parse: Callable[[str], Any]
    accepts: str
    meaning: str
    # How the default reads in the table, when its value alone would not say it.
    shown_default: str | None = None


REQUIRED: Any = dataclasses.MISSING


def declare(
    env: str,
    parse: Callable[[str], Any],
    default: Any,
    accepts: str | None,
    meaning: str,
    shown_default: str | None = None,
) -> Any:
    accepts = accepts or str(getattr(parse, "accepts", ""))
    declaration = Declaration(env, parse, accepts, meaning, shown_default)
    return field(default=default, metadata={"declaration": declaration})


def read_value(declared: dataclasses.Field[Any], env: Mapping[str, str]) -> Any:
    """The field's value from `env`: parsed, its default when unset, or ConfigError naming
    the variable."""
    declaration: Declaration = declared.metadata["declaration"]
    raw = env.get(declaration.env, "").strip()
    if not raw:
        if declared.default is dataclasses.MISSING:
            raise ConfigError(f"{declaration.env} is required")
        return declared.default
    try:
        return declaration.parse(raw)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{declaration.env}={raw[:80]!r} is invalid: {error}") from error
