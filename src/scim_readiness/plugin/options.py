"""Per-check options (``checks.<id>.options``) read with their types checked.

Options are free-form in the config, so a typo (``"14 days"``) must become a clear message
naming the option, not an internal error from ``float()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scim_readiness.errors import ConfigError

if TYPE_CHECKING:
    from scim_readiness.plugin.context import CheckContext


def number_option(ctx: CheckContext, name: str, default: float, *, minimum: float = 0.0) -> float:
    value: Any = ctx.option(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(
            f"option {name} must be a number ≥ {minimum:g}, not {value!r}",
            key=f"checks.{ctx.info.id}.options.{name}",
            hint=f"remove it to use the default ({default:g})",
        )
    return float(value)


def flag_option(ctx: CheckContext, name: str, default: bool) -> bool:
    value: Any = ctx.option(name, default)
    if not isinstance(value, bool):
        raise ConfigError(
            f"option {name} must be true or false, not {value!r}",
            key=f"checks.{ctx.info.id}.options.{name}",
        )
    return value


def text_option(ctx: CheckContext, name: str, default: str) -> str:
    value: Any = ctx.option(name, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"option {name} must be a non-empty string, not {value!r}",
            key=f"checks.{ctx.info.id}.options.{name}",
        )
    return value
