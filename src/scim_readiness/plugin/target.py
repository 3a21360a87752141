"""Which Scalekit environment, organisation and directory a run is about.

The `environment`, `admin-portal` and `data-model` checks all need the same answers: the
environment URL and credentials (as the config loader left them: from the file, else from
the standard ``SCALEKIT_*`` variables), the organisation (by id or by the app's external id)
and its SCIM directory (the configured one, else the only or first enabled one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from scim_readiness.errors import ScalekitError

if TYPE_CHECKING:
    from scim_readiness.clients.scalekit import ScalekitGateway
    from scim_readiness.config import Config, ScalekitSection

#: The credentials ``environment_settings`` reports on, by name: (config section, key).
_CREDENTIALS = {
    "url": ("scalekit", "environment_url"),
    "client_id": ("scalekit", "client_id"),
    "client_secret": ("scalekit", "client_secret"),
    "webhook_secret": ("webhook", "secret"),
}


@dataclass(frozen=True, slots=True)
class Setting:
    """One configured value and where it came from. ``value`` may be a secret: never show it."""

    variable: str  # the standard environment variable name
    config_key: str
    value: str | None
    source: Literal["config", "environment", "missing"]

    @property
    def where(self) -> str:
        if self.source == "config":
            return self.config_key
        if self.source == "environment":
            return f"${self.variable}"
        return f"neither {self.config_key} nor ${self.variable}"


def environment_settings(config: Config) -> dict[str, Setting]:
    """The environment URL, client id, client secret and webhook secret as configured, each
    with its standard variable and where its value came from. The config loader is the one
    place that falls back to the variables; it records which keys it filled."""
    from pydantic import SecretStr

    from scim_readiness.config import ENV_FALLBACKS

    found: dict[str, Setting] = {}
    for name, (section, key) in _CREDENTIALS.items():
        value = getattr(getattr(config, section), key)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        config_key = f"{section}.{key}"
        variable = ENV_FALLBACKS[(section, key)]
        if not text:
            found[name] = Setting(variable, config_key, None, "missing")
        elif config_key in config.from_environment:
            found[name] = Setting(variable, config_key, text, "environment")
        else:
            found[name] = Setting(variable, config_key, text, "config")
    return found


def resolved_environment_url(scalekit: ScalekitSection) -> str | None:
    """The configured environment URL (the loader has already applied its variable)."""
    return scalekit.environment_url or None


class TargetUnavailable(Exception):
    """The organisation or directory cannot be determined; ``reason`` says why."""

    def __init__(self, reason: str, why: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.why = why


def is_not_found(exc: ScalekitError) -> bool:
    """Whether Scalekit answered "no such object" (as opposed to being unreachable)."""
    from scim_readiness.clients.scalekit import ScalekitNotFoundError

    return isinstance(exc, ScalekitNotFoundError)


async def find_organization(section: ScalekitSection, gateway: ScalekitGateway) -> Any:
    """The organisation ``section`` configures; TargetUnavailable when none is configured or
    it does not exist; ScalekitError when Scalekit cannot be asked."""
    try:
        if section.organization_id:
            return await gateway.get_organization(section.organization_id)
        if section.organization_external_id:
            return await gateway.get_organization_by_external_id(section.organization_external_id)
    except ScalekitError as exc:
        if is_not_found(exc):
            what = (
                f"organisation {section.organization_id}"
                if section.organization_id
                else f"organisation with external id {section.organization_external_id!r}"
            )
            raise TargetUnavailable(
                f"{what} does not exist in this environment ({exc.message})",
                why="Organisations live in one environment; ids from development do not exist "
                "in production.",
            ) from exc
        raise
    raise TargetUnavailable(
        "no organisation configured (scalekit.organization_id or "
        "scalekit.organization_external_id)",
        why="Without an organisation nothing about directories or portals can be observed.",
    )


async def organization_id_for(section: ScalekitSection, gateway: ScalekitGateway) -> str:
    """The id of the organisation ``section`` configures (looked up by its external id when
    only that is configured)."""
    if section.organization_id:
        return section.organization_id
    org = await find_organization(section, gateway)
    return str(org.id)


async def find_directory(section: ScalekitSection, gateway: ScalekitGateway, org_id: str) -> Any:
    """The directory ``section`` configures, else the organisation's only (or first enabled)
    one."""
    wanted = section.directory_id
    if wanted:
        try:
            return await gateway.get_directory(org_id, wanted)
        except ScalekitError as exc:
            if is_not_found(exc):
                raise TargetUnavailable(
                    f"directory {wanted} does not exist in organisation {org_id}",
                    why="The configured directory id belongs to another organisation or was "
                    "deleted.",
                ) from exc
            raise
    directories = list(await gateway.list_directories(org_id))
    if not directories:
        raise TargetUnavailable(
            f"organisation {org_id} has no directory",
            why="Without a directory no IdP can provision users.",
        )
    enabled = [d for d in directories if getattr(d, "enabled", False)]
    return (enabled or directories)[0]


def epoch_seconds(value: Any) -> float | None:
    """A time as Unix seconds, from a datetime, a protobuf Timestamp or a number; None when
    absent (an unset protobuf Timestamp is zero seconds)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value else None
    timestamp = getattr(value, "timestamp", None)
    if callable(timestamp):
        result = timestamp()
        return float(result) if isinstance(result, int | float) else None
    seconds = getattr(value, "seconds", None)
    if isinstance(seconds, int):
        nanos = getattr(value, "nanos", 0)
        return seconds + nanos / 1e9 if seconds or nanos else None
    return None
