"""``raw_attributes`` in the checker's events: the SCIM resource an IdP sends for the user
or group, agreeing with the event's own fields (Scalekit documents it as the attributes "as
received from the Directory Provider")."""

from __future__ import annotations

from scim_readiness.events import group_data, group_deleted_data, user_data
from scim_readiness.events.envelope import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    SOMETIMES_ABSENT,
    USER_SCHEMA,
    absent_fields,
)

ORG = "org_60219377000000001"
DIR = "dir_60219378000000001"


def _grace(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "id": "diruser_1",
        "organization_id": ORG,
        "email": "Grace.Hopper+ops@acme-corp.example",
        "given_name": "Grace",
        "family_name": "Hopper",
        "dp_id": "00u2grace",
        "department": "Navy",
        "employee_id": "E-1906",
        "nickname": "Amazing Grace",
        "zoneinfo": "America/New_York",
        "phone_number": "+1 555 0100",
        "address": {"postal_code": "10001", "state": "New York", "formatted": "NYC"},
        "vary": False,
    }
    fields.update(changes)
    return user_data(**fields)  # type: ignore[arg-type]


def test_a_user_event_carries_the_scim_user_its_fields_came_from() -> None:
    raw = _grace()["raw_attributes"]
    assert raw == {
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "userName": "Grace.Hopper+ops@acme-corp.example",
        "externalId": "00u2grace",
        "active": True,
        "name": {"givenName": "Grace", "familyName": "Hopper", "formatted": "Grace Hopper"},
        "emails": [
            {"value": "Grace.Hopper+ops@acme-corp.example", "primary": True, "type": "work"}
        ],
        "nickName": "Amazing Grace",
        "timezone": "America/New_York",
        "phoneNumbers": [{"value": "+1 555 0100", "primary": True}],
        "addresses": [
            {
                "postalCode": "10001",
                "region": "New York",
                "formatted": "NYC",
                "primary": True,
                "type": "work",
            }
        ],
        ENTERPRISE_USER_SCHEMA: {"department": "Navy", "employeeNumber": "E-1906"},
    }


def test_raw_attributes_follow_an_update() -> None:
    before = _grace()["raw_attributes"]
    after = _grace(email="grace@navy.example", active=False, family_name="Murray")["raw_attributes"]
    assert isinstance(before, dict) and isinstance(after, dict)
    assert after["emails"][0]["value"] == "grace@navy.example"
    assert after["active"] is False and after["name"]["familyName"] == "Murray"
    assert after["userName"] == "grace@navy.example"  # preferred_username follows the email
    assert before["emails"][0]["value"] != after["emails"][0]["value"]


def test_what_the_event_leaves_out_the_idp_did_not_send() -> None:
    # A user whose events leave out dp_id, the full name and the phone, as some IdPs do.
    every = frozenset(SOMETIMES_ABSENT)
    user_id = next(f"diruser_{n}" for n in range(10_000) if absent_fields(f"diruser_{n}") == every)
    data = _grace(id=user_id, vary=True)
    raw = data["raw_attributes"]
    assert isinstance(raw, dict)
    assert "dp_id" not in data and "externalId" not in raw
    assert "phone_number" not in data and "phoneNumbers" not in raw
    assert "name" not in data and "formatted" not in raw["name"]
    bare = user_data(
        id="diruser_2",
        organization_id=ORG,
        email=None,
        given_name=None,
        family_name=None,
        preferred_username="jdoe",
        vary=False,
    )["raw_attributes"]
    assert bare == {"schemas": [USER_SCHEMA], "userName": "jdoe", "active": True}


def test_a_password_or_server_field_never_appears() -> None:
    raw = _grace()["raw_attributes"]
    assert isinstance(raw, dict)
    assert not {"password", "id", "meta", "groups"} & set(raw)


def test_group_events_carry_the_scim_group() -> None:
    created = group_data(
        id="dirgroup_1",
        directory_id=DIR,
        display_name="Engineering",
        organization_id=ORG,
        external_id="00g1eng",
    )
    assert created["raw_attributes"] == {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Engineering",
        "externalId": "00g1eng",
    }
    renamed = group_data(id="dirgroup_1", directory_id=DIR, display_name="R&D", organization_id=ORG)
    assert renamed["raw_attributes"] == {"schemas": [GROUP_SCHEMA], "displayName": "R&D"}
    deleted = group_deleted_data(
        id="dirgroup_1",
        directory_id=DIR,
        display_name="R&D",
        organization_id=ORG,
        dp_id="00g1eng",
    )
    assert deleted["raw_attributes"]["externalId"] == "00g1eng"
