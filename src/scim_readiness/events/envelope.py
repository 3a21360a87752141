"""Event envelopes and the ``data`` of each directory event type."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import secrets
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


#: Optional user fields that real IdPs leave out for some users (domain §4: not every IdP
#: sends ``dp_id``, a full name or a phone). An app that needs them crashes in production,
#: so the checker's events leave each out for about one user in three.
SOMETIMES_ABSENT = ("dp_id", "name", "phone_number")


def absent_fields(user_id: str) -> frozenset[str]:
    """The optional fields this user's events leave out: chosen from the id, so every event
    about one user agrees (one IdP sends the same attributes each time) and a run's many
    test users meet every combination."""
    digest = hashlib.sha256(user_id.encode()).digest()
    return frozenset(
        field for index, field in enumerate(SOMETIMES_ABSENT) if digest[index] % 3 == 0
    )


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
    email: str | None,
    given_name: str | None,
    family_name: str | None,
    active: bool = True,
    groups: Iterable[Mapping[str, Any] | tuple[str, str]] = (),
    roles: Iterable[Mapping[str, Any] | str] = (),
    dp_id: str | None = None,
    preferred_username: str | None = None,
    custom_attributes: Mapping[str, Any] | None = None,
    vary: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """``data`` of ``user_created`` / ``user_updated`` (a DirectoryUser).

    ``groups`` are ``(id, name)`` pairs or ``{"id", "name"}`` dicts; ``roles`` are role names or
    ``{"role_name"}`` dicts. ``extra`` adds the documented top-level fields (``nickname``,
    ``picture``, ``phone_number``, ``address``, ``locale``, ``language``, ``zoneinfo``,
    ``user_type``, ``profile``, ``department``, ``employee_id``, ``title``, ``cost_center``,
    ``division``, ``organization``, ``name``...); a value of None leaves a field out, as the
    service does. Nothing is made up: no ``dp_id``, email or name unless given.
    ``raw_attributes`` (documented as the attributes "as received from the Directory
    Provider") is the SCIM User an IdP sends for these fields (:func:`idp_user_resource`)
    unless given; None leaves it out. ``vary`` leaves out, for some users, the fields
    :func:`absent_fields` names (the checker's events); the emulator sends what its
    directory holds and passes False.
    """
    full_name = f"{given_name or ''} {family_name or ''}".strip()
    data: dict[str, Any] = {
        "active": active,
        "custom_attributes": dict(custom_attributes or {}),
        "dp_id": dp_id,
        "email": email,
        "family_name": family_name,
        "given_name": given_name,
        "groups": _groups(groups),
        "id": id,
        "name": full_name or None,
        "organization_id": organization_id,
        "preferred_username": preferred_username or email,
        "roles": _roles(roles),
    }
    data.update(extra)
    if vary:
        for field in absent_fields(id):
            data.pop(field, None)
    kept = {key: value for key, value in data.items() if value is not None}
    if "raw_attributes" not in extra:
        # What the IdP sent: built from the fields this event carries, so the two agree
        # (after an update too) and what the event leaves out, the IdP did not send.
        kept["raw_attributes"] = idp_user_resource(kept)
    return _sorted(kept)  # type: ignore[no-any-return]


def user_deleted_data(
    *,
    id: str,
    organization_id: str,
    email: str | None,
    dp_id: str | None = None,
    vary: bool = True,
) -> dict[str, Any]:
    """``data`` of ``user_deleted``: only the identifiers (those the directory has)."""
    data = {"dp_id": dp_id, "email": email, "id": id, "organization_id": organization_id}
    if vary and "dp_id" in absent_fields(id):
        data["dp_id"] = None
    return {key: value for key, value in data.items() if value is not None}


def group_data(
    *,
    id: str,
    directory_id: str,
    display_name: str,
    organization_id: str,
    external_id: str | None = None,
    raw_attributes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``data`` of ``group_created`` / ``group_updated`` (``external_id`` may be null);
    ``raw_attributes`` defaults to the SCIM Group an IdP sends (:func:`idp_group_resource`)."""
    if raw_attributes is None:
        raw_attributes = idp_group_resource(display_name, external_id)
    return {
        "directory_id": directory_id,
        "display_name": display_name,
        "external_id": external_id,
        "id": id,
        "organization_id": organization_id,
        "raw_attributes": _sorted(dict(raw_attributes)),
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
    """``data`` of ``group_deleted`` (``dp_id`` only when the IdP gave the group one)."""
    if raw_attributes is None:
        raw_attributes = idp_group_resource(display_name, dp_id)
    data = {
        "directory_id": directory_id,
        "display_name": display_name,
        "dp_id": dp_id,
        "id": id,
        "organization_id": organization_id,
        "raw_attributes": _sorted(dict(raw_attributes)),
    }
    return {key: value for key, value in data.items() if value is not None}


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


# -- raw_attributes: the resource as the IdP sent it -----------------------------------------

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# Top-level field of a user event -> the SCIM attribute an IdP sends it as (RFC 7643 §4.1,
# §4.3): the reverse of how Scalekit normalises them.
_SCIM_CORE = {
    "preferred_username": "userName",
    "dp_id": "externalId",
    "nickname": "nickName",
    "title": "title",
    "user_type": "userType",
    "locale": "locale",
    "language": "preferredLanguage",
    "zoneinfo": "timezone",
    "profile": "profileUrl",
}
_SCIM_ENTERPRISE = {
    "department": "department",
    "employee_id": "employeeNumber",
    "cost_center": "costCenter",
    "division": "division",
    "organization": "organization",
}
_SCIM_MULTI = {"email": "emails", "phone_number": "phoneNumbers", "picture": "photos"}
# Scalekit's documented address keys (snake case) and SCIM's own, to SCIM's.
_SCIM_ADDRESS = {
    "formatted": "formatted",
    "street_address": "streetAddress",
    "streetAddress": "streetAddress",
    "locality": "locality",
    "region": "region",
    "state": "region",
    "postal_code": "postalCode",
    "postalCode": "postalCode",
    "country": "country",
}


def idp_user_resource(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The SCIM User an IdP sends for a user event's top-level ``fields``: what Scalekit
    documents as ``raw_attributes`` ("as received from the Directory Provider").

    Only what ``fields`` holds is described (no ``externalId`` without a ``dp_id``, no
    emails without an email), and never a password or anything the server assigns.
    """
    resource: dict[str, Any] = {"schemas": [USER_SCHEMA]}
    for field, attribute in _SCIM_CORE.items():
        if fields.get(field) is not None:
            resource[attribute] = fields[field]
    if "active" in fields:
        resource["active"] = bool(fields["active"])
    name = {
        key: fields[field]
        for key, field in (("givenName", "given_name"), ("familyName", "family_name"))
        if fields.get(field)
    }
    if fields.get("name"):
        name["formatted"] = fields["name"]
    if name:
        resource["name"] = name
    for field, attribute in _SCIM_MULTI.items():
        if fields.get(field):
            item = {"value": fields[field], "primary": True}
            resource[attribute] = [{**item, "type": "work"} if field == "email" else item]
    address = fields.get("address")
    if isinstance(address, Mapping):
        scim = {_SCIM_ADDRESS[k]: v for k, v in address.items() if k in _SCIM_ADDRESS and v}
        if scim:
            resource["addresses"] = [{**scim, "primary": True, "type": "work"}]
    enterprise = {
        attribute: fields[field]
        for field, attribute in _SCIM_ENTERPRISE.items()
        if fields.get(field) is not None
    }
    if enterprise:
        resource["schemas"] = [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]
        resource[ENTERPRISE_USER_SCHEMA] = enterprise
    return resource


def idp_group_resource(display_name: str, external_id: str | None = None) -> dict[str, Any]:
    """The SCIM Group an IdP sends (``raw_attributes`` of group events): its name and, when
    the IdP gave one, its ``externalId``. Members travel in their own changes."""
    resource: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": display_name}
    if external_id:
        resource["externalId"] = external_id
    return resource
