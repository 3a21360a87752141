"""SCIM requests into the emulator produce exactly the Scalekit events a receiver expects,
signed so the SDK verifies them, retried when the receiver fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scim_readiness.devstack.emulator import Emulator, start_emulator

from .receiver import Receiver, run_receiver

VECTORS = Path(__file__).parent.parent / "events" / "vectors"
SECRET = "whsec_c2NpbS1yZWFkaW5lc3MtZW11bGF0b3ItdGVzdHMhIQ=="
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def vector(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / f"event-{name}.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with run_receiver() as r:
        yield r


@pytest.fixture
def wired(emulator: Emulator, receiver: Receiver) -> Emulator:
    emulator.register_webhook(receiver.url, SECRET)
    return emulator


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


def new_user(user_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Zed", "familyName": "Tester"},
        "emails": [{"value": user_name, "primary": True, "type": "work"}],
        "active": True,
        "externalId": "00uTEST" + user_name.split("@")[0],
        **extra,
    }


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


def group_id(emu: Emulator, name: str) -> str:
    directory = emu.state.directory(emu.directory_id)
    return next(g.id for g in directory.groups.values() if g.display_name == name)


def delivered(emu: Emulator, count: int) -> list[dict[str, Any]]:
    assert emu.deliveries.wait_for(
        lambda items: sum(d.delivered for d in items) >= count, timeout=10
    ), [(d.event_type, d.status_codes) for d in emu.deliveries.all()]
    return [d.event for d in emu.deliveries.all()]


def test_lifecycle_emits_exactly_the_expected_events(
    wired: Emulator, receiver: Receiver, scim: httpx.Client
) -> None:
    created = scim.post("/Users", json=new_user("zed@acme-corp.example"))
    assert created.status_code == 201, created.text
    user = created.json()
    assert created.headers["location"] == user["meta"]["location"]
    engineering = group_id(wired, "Engineering")

    joined = scim.patch(
        f"/Groups/{engineering}",
        json=patch({"op": "add", "path": "members", "value": [{"value": user["id"]}]}),
    )
    assert joined.status_code == 200, joined.text
    temp = scim.post("/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": "Temp"})
    assert temp.status_code == 201, temp.text
    temp_id = temp.json()["id"]
    assert (
        scim.patch(
            f"/Groups/{temp_id}",
            json=patch({"op": "add", "path": "members", "value": [{"value": user["id"]}]}),
        ).status_code
        == 200
    )
    # Entra's shape: path + string boolean
    off = scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "active", "value": "False"})
    )
    assert off.status_code == 200 and off.json()["active"] is False
    assert scim.delete(f"/Groups/{temp_id}").status_code == 204
    assert scim.delete(f"/Users/{user['id']}").status_code == 204

    events = delivered(wired, 8)
    assert (
        [e["type"].rsplit(".", 1)[-1] for e in events]
        == [
            "user_created",
            "user_updated",  # joined Engineering
            "group_created",
            "user_updated",  # joined Temp
            "user_updated",  # deactivated
            "group_deleted",
            "user_updated",  # Temp gone: groups and roles recalculated
            "user_deleted",
        ][: len(events)]
    )
    assert len(events) == 8
    c, joined_eng, g_created, joined_temp, deactivated, g_deleted, recalculated, deleted = events

    assert c["data"]["roles"] == [] and c["data"]["groups"] == []
    assert c["data"]["dp_id"] == "00uTESTzed" and c["data"]["active"] is True
    assert joined_eng["data"]["roles"] == [{"role_name": "editor"}]
    assert joined_eng["data"]["groups"] == [{"id": engineering, "name": "Engineering"}]
    assert g_created["data"]["external_id"] is None
    assert {g["name"] for g in joined_temp["data"]["groups"]} == {"Engineering", "Temp"}
    assert deactivated["data"]["active"] is False
    assert g_deleted["data"]["id"] == temp_id
    assert recalculated["data"]["groups"] == [{"id": engineering, "name": "Engineering"}]
    assert recalculated["data"]["roles"] == [{"role_name": "editor"}]
    assert deleted["data"] == {
        "dp_id": "00uTESTzed",
        "email": "zed@acme-corp.example",
        "id": user["id"],
        "organization_id": wired.organization_id,
    }

    (gone,) = wired.deliveries.of_type("organization.directory.user_deleted")
    assert wired.deliveries.for_event(gone.event_id) == [gone]
    assert gone.delivered and gone.status_codes == [200]

    # Same envelope and field names as the documented events.
    for event, name in (
        (c, "user_created"),
        (deactivated, "user_updated_deactivated"),
        (g_created, "group_created"),
        (g_deleted, "group_deleted"),
        (deleted, "user_deleted"),
    ):
        reference = vector(name)
        assert list(event) == list(reference), name
        assert event["object"] == reference["object"]
        assert event["environment_id"] == wired.environment_id
        missing = set(reference["data"]) - set(event["data"])
        # HR fields in the vector (department, title, …) appear only when the IdP sends them;
        # so does dp_id (the group here was created without an externalId).
        optional = {"department", "employee_id", "title", "custom_attributes"}
        assert missing <= optional | ({"dp_id"} if name == "group_deleted" else set()), (
            name,
            missing,
        )
        extra = set(event["data"]) - set(reference["data"])
        assert not extra, (name, extra)


def test_deliveries_verify_with_the_sdk_and_carry_both_header_families(
    wired: Emulator, receiver: Receiver, scim: httpx.Client
) -> None:
    from scalekit import ScalekitClient

    assert scim.post("/Users", json=new_user("sig@acme-corp.example")).status_code == 201
    delivered(wired, 1)
    (got,) = receiver.received
    client = ScalekitClient(wired.env_url, wired.client_id, wired.client_secret)
    assert client.verify_webhook_payload(SECRET, got.headers, got.body) is True
    for part in ("id", "timestamp", "signature"):
        assert got.headers[f"svix-{part}"] == got.headers[f"webhook-{part}"]
    assert got.headers["webhook-id"] == json.loads(got.body)["id"]
    assert got.headers["content-type"] == "application/json"
    from scalekit.common.exceptions import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        client.verify_webhook_payload(SECRET, got.headers, got.body.replace(b"sig@", b"sog@"))


def test_group_delete_sends_user_updated_for_every_member(
    wired: Emulator, scim: httpx.Client
) -> None:
    admins = group_id(wired, "Admins")
    assert scim.delete(f"/Groups/{admins}").status_code == 204
    events = delivered(wired, 3)
    assert [e["type"] for e in events] == [
        "organization.directory.group_deleted",
        "organization.directory.user_updated",
        "organization.directory.user_updated",
    ]
    members = {e["data"]["email"]: e["data"] for e in events[1:]}
    assert set(members) == {"grace.hopper@acme-corp.example", "katherine.johnson@acme-corp.example"}
    assert members["grace.hopper@acme-corp.example"]["roles"] == [{"role_name": "editor"}]
    assert members["katherine.johnson@acme-corp.example"]["roles"] == []
    assert members["katherine.johnson@acme-corp.example"]["groups"] == []


def test_retries_after_two_500s_then_delivers() -> None:
    with (
        run_receiver(script=[500, 500]) as receiver,
        start_emulator(delivery_delay_scale=0.001) as emu,
    ):
        emu.register_webhook(receiver.url, SECRET)
        directory = emu.state.directory(emu.directory_id)
        emu.state.set_directory_enabled(directory, False)
        (event,) = delivered(emu, 1)
        (delivery,) = emu.deliveries.all()
    assert event["type"] == "organization.directory_disabled"
    assert delivery.status_codes == [500, 500, 200]
    assert delivery.delivered and delivery.finished
    assert all(a.latency_s >= 0 for a in delivery.attempts)
    assert [r.headers["webhook-id"] for r in receiver.received] == [event["id"]] * 3
    # each attempt is signed afresh over the same bytes
    assert {r.body for r in receiver.received} == {delivery.body}


def test_gives_up_after_the_configured_attempts() -> None:
    with (
        run_receiver(script=[503] * 10) as receiver,
        start_emulator(delivery_delay_scale=0.001, delivery_attempts=3) as emu,
    ):
        emu.register_webhook(receiver.url, SECRET)
        emu.state.set_directory_enabled(emu.state.directory(emu.directory_id), False)
        assert emu.deliveries.wait_idle(timeout=10)
        (delivery,) = emu.deliveries.all()
    assert delivery.status_codes == [503, 503, 503]
    assert not delivery.delivered and delivery.finished
    assert len(receiver.received) == 3


@pytest.mark.timeout(30)
def test_slow_receiver_attempt_is_cut_off() -> None:
    with (
        run_receiver(delay_s=2.0) as receiver,
        start_emulator(
            delivery_delay_scale=0.001, delivery_attempts=1, attempt_timeout_s=0.3
        ) as emu,
    ):
        emu.register_webhook(receiver.url, SECRET)
        emu.state.set_directory_enabled(emu.state.directory(emu.directory_id), False)
        assert emu.deliveries.wait_idle(timeout=10)
        (delivery,) = emu.deliveries.all()
    (attempt,) = delivery.attempts
    assert attempt.status is None
    assert attempt.error == "no answer within the attempt timeout"


def test_unreachable_receiver_is_recorded_in_plain_words() -> None:
    with run_receiver() as receiver:
        url = receiver.url
    with start_emulator(delivery_delay_scale=0.001, delivery_attempts=2) as emu:
        emu.register_webhook(url, SECRET)
        emu.state.set_directory_enabled(emu.state.directory(emu.directory_id), False)
        assert emu.deliveries.wait_idle(timeout=10)
        (delivery,) = emu.deliveries.all()
    assert [a.status for a in delivery.attempts] == [None, None]
    assert delivery.attempts[0].error is not None
    assert delivery.attempts[0].error.startswith("could not connect")


def test_scim_errors(wired: Emulator, scim: httpx.Client) -> None:
    first = scim.post("/Users", json=new_user("dup@acme-corp.example"))
    assert first.status_code == 201
    dup = scim.post("/Users", json=new_user("DUP@acme-corp.example"))
    assert dup.status_code == 409
    assert dup.json()["scimType"] == "uniqueness"
    assert dup.headers["content-type"].startswith("application/scim+json")

    broken = scim.post("/Users", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["scimType"] == "invalidSyntax"
    no_name = scim.post("/Users", json={"schemas": [USER_SCHEMA], "active": True})
    assert no_name.status_code == 400 and no_name.json()["scimType"] == "invalidValue"
    wrong_type = scim.post("/Users", json=new_user("t@acme-corp.example", active="maybe"))
    assert wrong_type.status_code == 400 and wrong_type.json()["scimType"] == "invalidValue"
    bad_patch = scim.patch(
        f"/Users/{first.json()['id']}", json=patch({"op": "replace", "path": "active", "value": 7})
    )
    assert bad_patch.status_code == 400

    assert scim.get("/Users/diruser_404").status_code == 404
    assert scim.delete("/Groups/dirgroup_404").status_code == 404
    unknown_member = scim.patch(
        f"/Groups/{group_id(wired, 'Admins')}",
        json=patch({"op": "add", "path": "members", "value": [{"value": "diruser_404"}]}),
    )
    assert unknown_member.status_code == 400

    unauthenticated = httpx.get(
        wired.scim_url() + "/Users",
        headers={"authorization": "Bearer wrong"},
        verify=wired.ca.client_context(),
        trust_env=False,
    )
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["status"] == "401"

    # Only the one successful create became an event: failures change nothing.
    events = delivered(wired, 1)
    assert [e["type"] for e in events] == ["organization.directory.user_created"]


def test_get_filter_put_and_okta_style_patches(wired: Emulator, scim: httpx.Client) -> None:
    created = scim.post("/Users", json=new_user("pat@acme-corp.example")).json()
    found = scim.get("/Users", params={"filter": 'userName eq "PAT@acme-corp.example"'}).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == created["id"]
    none = scim.get("/Users", params={"filter": 'userName eq "nobody@x.example"'}).json()
    assert none["totalResults"] == 0
    unparsable = scim.get("/Users", params={"filter": "userName eq"})
    assert unparsable.status_code == 400 and unparsable.json()["scimType"] == "invalidFilter"
    assert scim.get(f"/Users/{created['id']}").json()["userName"] == "pat@acme-corp.example"

    replaced = scim.put(
        f"/Users/{created['id']}",
        json=new_user(
            "pat.new@acme-corp.example",
            name={"givenName": "Pat", "familyName": "New"},
        ),
    )
    assert replaced.status_code == 200 and replaced.json()["name"]["givenName"] == "Pat"
    okta = scim.patch(
        f"/Users/{created['id']}", json=patch({"op": "replace", "value": {"active": False}})
    )
    assert okta.json()["active"] is False

    admins = group_id(wired, "Admins")
    scim.patch(
        f"/Groups/{admins}",
        json=patch({"op": "add", "path": "members", "value": [{"value": created["id"]}]}),
    )
    removed = scim.patch(
        f"/Groups/{admins}",
        json=patch({"op": "remove", "path": f'members[value eq "{created["id"]}"]'}),
    )
    assert created["id"] not in {m["value"] for m in removed.json()["members"]}

    events = delivered(wired, 5)
    kinds = [e["type"].rsplit(".", 1)[-1] for e in events]
    assert kinds == ["user_created", "user_updated", "user_updated", "user_updated", "user_updated"]
    assert events[1]["data"]["email"] == "pat.new@acme-corp.example"
    assert events[1]["data"]["given_name"] == "Pat"
    assert events[3]["data"]["roles"] == [{"role_name": "admin"}]
    assert events[4]["data"]["roles"] == []


def test_scim_use_marks_the_secret_as_used(emulator: Emulator, scim: httpx.Client) -> None:
    directory = emulator.state.directory(emulator.directory_id)
    before = directory.secrets[0].last_used_time
    assert scim.get("/Users").status_code == 200
    assert directory.secrets[0].last_used_time is not None
    assert before is None or directory.secrets[0].last_used_time > before


def test_passwords_never_reach_events_and_optional_attributes_can_be_removed(
    wired: Emulator, scim: httpx.Client
) -> None:
    created = scim.post(
        "/Users", json=new_user("pw@acme-corp.example", password="hunter2", title="Engineer")
    )
    assert created.status_code == 201
    user_id = created.json()["id"]
    dropped = scim.patch(f"/Users/{user_id}", json=patch({"op": "remove", "path": "title"}))
    assert dropped.status_code == 200 and "title" not in dropped.json()
    refused = scim.patch(f"/Users/{user_id}", json=patch({"op": "remove", "path": "userName"}))
    assert refused.status_code == 400 and refused.json()["scimType"] == "mutability"
    events = delivered(wired, 2)
    assert events[0]["data"]["title"] == "Engineer"
    assert "title" not in events[1]["data"]
    for event in events:
        assert "hunter2" not in json.dumps(event)


def test_state_changes_after_stop_are_harmless() -> None:
    with start_emulator() as emu:
        emu.register_webhook("http://127.0.0.1:9/never", SECRET)
    directory = emu.state.directory(emu.directory_id)
    emu.state.set_directory_enabled(directory, False)  # no loop any more: must not raise
    assert emu.events[-1]["type"] == "organization.directory_disabled"
