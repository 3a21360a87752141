"""Event envelopes and the ``data`` of each directory event type."""

from __future__ import annotations

import datetime as dt
import enum
import json
import secrets
import string
from collections.abc import Iterable, Mapping
from typing import Any


class EventType(enum.StrEnum):
    """The eight directory event types Scalekit delivers."""

    DIRECTORY_ENABLED = "organization.directory_enabled"
    DIRECTORY_DISABLED = "organization.directory_disabled"
    USER_CREATED = "organization.directory.user_created"
    USER_UPDATED = "organization.directory.user_updated"
    USER_DELETED = "organization.directory.user_deleted"
    GROUP_CREATED = "organization.directory.group_created"
    GROUP_UPDATED = "organization.directory.group_updated"
    GROUP_DELETED = "organization.directory.group_deleted"

    @property
    def object(self) -> str:
        """The envelope's ``object`` for this type."""
        if self.value.startswith("organization.directory.user_"):
            return "DirectoryUser"
        if self.value.startswith("organization.directory.group_"):
            return "DirectoryGroup"
        return "Directory"

    @property
    def short_name(self) -> str:
        """The last part of the type, e.g. ``user_created`` (what people type on a CLI)."""
        return self.value.rsplit(".", 1)[-1]

    @classmethod
    def parse(cls, name: str) -> EventType:
        """Accept the full type or its short name (``user_created``, ``directory_enabled``).

        Raises ValueError naming the valid choices.
        """
        text = name.strip()
        for member in cls:
            if text in (member.value, member.short_name):
                return member
        choices = ", ".join(member.short_name for member in cls)
        raise ValueError(f"unknown event type {name!r}; expected one of: {choices}")


def new_event_id() -> str:
    """A fresh ``evt_`` id shaped like Scalekit's (a 17-digit number)."""
    return f"evt_{10**16 + secrets.randbelow(9 * 10**16)}"


def _timestamp(value: dt.datetime | str | None) -> str:
    if isinstance(value, str):
        return value
    moment = value or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sorted(value: Any) -> Any:
    # The service orders object keys alphabetically inside ``data``; mirroring that keeps the
    # bytes we send as close as possible to what a receiver sees in production.
    if isinstance(value, Mapping):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted(item) for item in value]
    return value


def build_event(
    event_type: EventType | str,
    data: Mapping[str, Any],
    *,
    organization_id: str,
    environment_id: str,
    event_id: str | None = None,
    occurred_at: dt.datetime | str | None = None,
    object_type: str | None = None,
) -> dict[str, Any]:
    """A complete event envelope.

    ``event_type`` may be any string (unknown types are how receivers' tolerance is tested);
    ``object_type`` then names the envelope's ``object`` (default from the type's prefix).
    """
    type_text = str(event_type)
    if object_type is None:
        try:
            object_type = EventType(type_text).object
        except ValueError:
            object_type = (
                "DirectoryUser"
                if ".user" in type_text
                else "DirectoryGroup"
                if ".group" in type_text
                else "Directory"
            )
    return {
        "spec_version": "1",
        "id": event_id or new_event_id(),
        "type": type_text,
        "occurred_at": _timestamp(occurred_at),
        "environment_id": environment_id,
        "organization_id": organization_id,
        "object": object_type,
        "data": _sorted(data),
    }


def encode_body(event: Mapping[str, Any]) -> bytes:
    """Compact JSON bytes, as delivered (no spaces, envelope order kept, UTF-8)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _idp_id(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(17))


def _groups(groups: Iterable[Mapping[str, Any] | tuple[str, str]]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for group in groups:
        if isinstance(group, Mapping):
            result.append({"id": group["id"], "name": group.get("name", group.get("display_name"))})
        else:
            group_id, name = group
            result.append({"id": group_id, "name": name})
    return result


def _roles(roles: Iterable[Mapping[str, Any] | str]) -> list[dict[str, Any]]:
    return [
        {"role_name": role} if isinstance(role, str) else {"role_name": role["role_name"]}
        for role in roles
    ]


def user_data(
    *,
    id: str,
    organization_id: str,
    email: str,
    given_name: str,
    family_name: str,
    active: bool = True,
    groups: Iterable[Mapping[str, Any] | tuple[str, str]] = (),
    roles: Iterable[Mapping[str, Any] | str] = (),
    dp_id: str | None = None,
    preferred_username: str | None = None,
    custom_attributes: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """``data`` of ``user_created`` / ``user_updated`` (a DirectoryUser).

    ``groups`` are ``(id, name)`` pairs or ``{"id", "name"}`` dicts; ``roles`` are role names or
    ``{"role_name"}`` dicts. ``extra`` adds the optional fields (``nickname``, ``picture``,
    ``phone_number``, ``address``, ``department``, ``employee_id``, ``title``, ``name``,
    ``raw_attributes``...); a value of None leaves a field out, as the service does.
    """
    data: dict[str, Any] = {
        "active": active,
        "custom_attributes": dict(custom_attributes or {}),
        "dp_id": dp_id or _idp_id("00u"),
        "email": email,
        "family_name": family_name,
        "given_name": given_name,
        "groups": _groups(groups),
        "id": id,
        "name": f"{given_name} {family_name}".strip(),
        "organization_id": organization_id,
        "preferred_username": preferred_username or email,
        "raw_attributes": {},
        "roles": _roles(roles),
    }
    for key, value in extra.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return _sorted(data)  # type: ignore[no-any-return]


def user_deleted_data(
    *,
    id: str,
    organization_id: str,
    email: str,
    dp_id: str | None = None,
) -> dict[str, Any]:
    """``data`` of ``user_deleted``: only the identifiers."""
    return {
        "dp_id": dp_id or _idp_id("00u"),
        "email": email,
        "id": id,
        "organization_id": organization_id,
    }


def group_data(
    *,
    id: str,
    directory_id: str,
    display_name: str,
    organization_id: str,
    external_id: str | None = None,
    raw_attributes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``data`` of ``group_created`` / ``group_updated`` (``external_id`` may be null)."""
    return {
        "directory_id": directory_id,
        "display_name": display_name,
        "external_id": external_id,
        "id": id,
        "organization_id": organization_id,
        "raw_attributes": _sorted(dict(raw_attributes or {})),
    }


def group_deleted_data(
    *,
    id: str,
    directory_id: str,
    display_name: str,
    organization_id: str,
    dp_id: str | None = None,
    raw_attributes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``data`` of ``group_deleted``."""
    return {
        "directory_id": directory_id,
        "display_name": display_name,
        "dp_id": dp_id or _idp_id("00g"),
        "id": id,
        "organization_id": organization_id,
        "raw_attributes": _sorted(dict(raw_attributes or {})),
    }


def directory_data(
    *,
    id: str,
    organization_id: str,
    enabled: bool = True,
    provider: str = "OKTA",
    directory_type: str = "SCIM",
    updated_at: dt.datetime | str | None = None,
    status: str | None = None,
    last_sync_at: dt.datetime | str | None = None,
) -> dict[str, Any]:
    """``data`` of ``directory_enabled`` / ``directory_disabled``; unset optional fields are
    left out."""
    data: dict[str, Any] = {
        "directory_type": directory_type,
        "enabled": enabled,
        "id": id,
        "organization_id": organization_id,
        "provider": provider,
        "updated_at": _timestamp(updated_at),
    }
    if status is not None:
        data["status"] = status
    if last_sync_at is not None:
        data["last_sync_at"] = _timestamp(last_sync_at)
    return _sorted(data)  # type: ignore[no-any-return]
