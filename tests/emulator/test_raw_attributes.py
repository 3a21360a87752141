"""``raw_attributes`` in the emulator's events: the resource as the IdP sent it, kept in
step with every PATCH, PUT and deletion, and for seeded users the resource an IdP would have
sent (Scalekit documents it as the attributes "as received from the Directory Provider")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from scim_readiness.devstack.emulator import Emulator
from scim_readiness.events.envelope import idp_user_resource

from .receiver import Receiver, run_receiver

SECRET = "whsec_c2NpbS1yZWFkaW5lc3MtZW11bGF0b3ItdGVzdHMhIQ=="
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def receiver(emulator: Emulator) -> Iterator[Receiver]:
    with run_receiver() as r:
        emulator.register_webhook(r.url, SECRET)
        yield r


@pytest.fixture
def scim(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emulator.scim_url(),
        headers={"authorization": f"Bearer {emulator.scim_token()}"},
        verify=emulator.ca.client_context(),
        trust_env=False,
        timeout=10,
    ) as client:
        yield client


def _events(emu: Emulator, count: int) -> list[dict[str, Any]]:
    assert emu.deliveries.wait_delivered(count, timeout=10)
    return [d.event for d in emu.deliveries.all()]


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


def test_a_users_raw_attributes_are_what_the_idp_sent_and_follow_each_patch(
    emulator: Emulator, receiver: Receiver, scim: httpx.Client
) -> None:
    sent = {
        "schemas": [USER, ENTERPRISE],
        "userName": "mhamilton@acme-corp.example",
        "externalId": "00u9hamilton",
        "name": {"givenName": "Margaret", "familyName": "Hamilton", "middleName": "H"},
        "emails": [{"value": "mhamilton@acme-corp.example", "primary": True, "type": "work"}],
        "title": "Director",
        "active": True,
        ENTERPRISE: {"department": "Software", "costCenter": "CC-11"},
    }
    created = scim.post("/Users", json={**sent, "password": "not-for-events-1!"})
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    (event,) = _events(emulator, 1)
    assert event["data"]["raw_attributes"] == sent  # the password never travels on

    replaced = scim.patch(
        f"/Users/{uid}",
        json=_patch(
            {"op": "replace", "path": "name.givenName", "value": "Maggie"},
            {"op": "add", "path": "nickName", "value": "Apollo"},
            {"op": "replace", "path": "active", "value": False},
        ),
    )
    assert replaced.status_code == 200, replaced.text
    updated = _events(emulator, 2)[-1]["data"]
    raw = updated["raw_attributes"]
    assert raw["name"] == {"givenName": "Maggie", "familyName": "Hamilton", "middleName": "H"}
    assert raw["nickName"] == "Apollo" and raw["active"] is False
    # The top-level fields and raw_attributes say the same thing.
    assert updated["given_name"] == "Maggie" and updated["nickname"] == "Apollo"
    assert updated["active"] is False

    removed = scim.patch(f"/Users/{uid}", json=_patch({"op": "remove", "path": "nickName"}))
    assert removed.status_code == 200, removed.text
    last = _events(emulator, 3)[-1]["data"]
    assert "nickName" not in last["raw_attributes"] and "nickname" not in last


def test_a_groups_raw_attributes_follow_renames_and_deleted_members(
    emulator: Emulator, receiver: Receiver, scim: httpx.Client
) -> None:
    uid = scim.post("/Users", json={"schemas": [USER], "userName": "kj@acme-corp.example"})
    member = uid.json()["id"]
    made = scim.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Flight",
            "externalId": "00gflight",
            "members": [{"value": member}],
        },
    )
    assert made.status_code == 201, made.text
    gid = made.json()["id"]
    assert scim.delete(f"/Users/{member}").status_code == 204
    renamed = scim.patch(
        f"/Groups/{gid}", json=_patch({"op": "replace", "path": "displayName", "value": "Ops"})
    )
    assert renamed.status_code == 200, renamed.text
    assert emulator.deliveries.wait_for(
        lambda ds: any(d.event_type.endswith("group_updated") for d in ds), timeout=10
    )
    events = [d.event for d in emulator.deliveries.all()]
    created = next(e for e in events if e["type"].endswith("group_created"))["data"]
    assert created["raw_attributes"]["displayName"] == "Flight"
    assert created["raw_attributes"]["externalId"] == "00gflight"
    updated = next(e for e in events if e["type"].endswith("group_updated"))["data"]
    assert updated["display_name"] == updated["raw_attributes"]["displayName"] == "Ops"
    assert updated["raw_attributes"].get("members", []) == []  # the deleted user is gone


def test_seeded_users_carry_the_resource_an_idp_would_have_sent(
    emulator: Emulator, receiver: Receiver
) -> None:
    sent = emulator.initial_sync()
    assert emulator.deliveries.wait_delivered(sent, timeout=10)
    users = [
        d.event["data"] for d in emulator.deliveries.all() if d.event_type.endswith("user_created")
    ]
    assert users
    for data in users:
        raw = data["raw_attributes"]
        assert raw["userName"] == data["preferred_username"]
        assert raw.get("externalId") == data.get("dp_id")
        assert raw["emails"][0]["value"] == data["email"]
        # The checker's events describe a user the same way.
        assert raw == idp_user_resource({k: v for k, v in data.items() if k != "raw_attributes"})
