"""The clean reference app over real HTTPS on loopback, driven by correctly signed events."""

from __future__ import annotations

import concurrent.futures
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from sampleapp.sampleapp_support import (
    ENV,
    ORG,
    OTHER_ORG,
    SECRET,
    TENANT,
    AppFactory,
    Sender,
    make_user_event,
)
from scim_readiness.devstack.sampleapp import AppSettings, RunningApp, serve_app
from scim_readiness.devstack.tls_ca import LocalCA, ServerCert
from scim_readiness.events import (
    EventType,
    build_event,
    encode_body,
    group_data,
    group_deleted_data,
    signed_headers,
    user_deleted_data,
)


def test_health_and_tls(app: RunningApp, client: httpx.Client) -> None:
    assert app.base_url.startswith("https://127.0.0.1:")
    assert client.get(app.health_url).json() == {"status": "ok"}
    # Only the run's CA makes this certificate trusted.
    with pytest.raises(httpx.ConnectError), httpx.Client(trust_env=False) as untrusting:
        untrusting.get(app.health_url)


def test_user_created_appears_with_every_fact(send: Sender) -> None:
    response = send.user(
        roles=["editor", "admin"],
        groups=[("dirgroup_1", "Engineering")],
        custom_attributes={"cost_center": "CC-1"},
        department="R&D",
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "created"
    user = send.user_state("diruser_1")
    assert user is not None
    assert set(user) == {
        "id",
        "directory_user_id",
        "email",
        "name",
        "active",
        "roles",
        "tenant",
        "attributes",
    }
    assert user["id"].startswith("usr_")
    assert user["directory_user_id"] == "diruser_1"
    assert user["email"] == "ada@acme.example"
    assert user["name"] == "Ada Lovelace"
    assert user["active"] is True
    assert user["roles"] == ["editor", "admin"]
    assert user["tenant"] == TENANT
    assert user["attributes"]["department"] == "R&D"
    assert user["attributes"]["custom_attributes"] == {"cost_center": "CC-1"}
    assert user["attributes"]["groups"] == [{"id": "dirgroup_1", "name": "Engineering"}]
    by_email = send.probe("/probe/users/by-email", email="ADA@acme.example")
    assert by_email.status_code == 200
    assert by_email.json() == user


def test_update_is_an_upsert_keyed_on_directory_user_id(send: Sender) -> None:
    assert send.user().status_code == 200
    first = send.user_state("diruser_1")
    assert first is not None
    renamed = send.user(
        EventType.USER_UPDATED, email="ada.king@acme.example", given_name="Augusta", roles=[]
    )
    assert renamed.json()["status"] == "updated"
    after = send.user_state("diruser_1")
    assert after is not None
    assert after["id"] == first["id"]
    assert after["email"] == "ada.king@acme.example"
    assert after["name"] == "Augusta Lovelace"
    assert after["roles"] == []
    assert send.probe("/probe/users/by-email", email="ada@acme.example").status_code == 404
    # user_created again (a redelivery under a new event id) does not make a second row.
    assert send.user(email="ada.king@acme.example").json()["status"] == "updated"
    assert len(send.rows("diruser_1")) == 1
    # user_updated for an unknown user creates it (events can arrive out of order).
    assert (
        send.user(EventType.USER_UPDATED, id="diruser_2", email="b@acme.example").status_code == 200
    )
    assert send.user_state("diruser_2") is not None


def test_replayed_event_id_is_acknowledged_but_not_reapplied(send: Sender) -> None:
    created = make_user_event(event_id="evt_20000000000000001")
    assert send.event(created).json()["status"] == "created"
    assert send.user(EventType.USER_UPDATED, active=False).status_code == 200
    replay = send.event(created)
    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate"
    state = send.user_state("diruser_1")
    assert state is not None and state["active"] is False


def test_second_directory_user_with_same_email_is_refused_and_nothing_recorded(
    send: Sender, app: RunningApp
) -> None:
    assert send.user().status_code == 200
    events_before = app.store.processed_event_count()
    clash = send.user(id="diruser_2", given_name="Impostor", event_id="evt_20000000000000009")
    assert clash.status_code == 409
    assert clash.json()["field"] == "data.email"
    assert "diruser_1" in clash.json()["detail"]
    assert send.user_state("diruser_2") is None
    original = send.user_state("diruser_1")
    assert original is not None and original["name"] == "Ada Lovelace"
    assert app.store.processed_event_count() == events_before
    # The same refusal on redelivery: a refused event was not marked as processed.
    again = send.user(id="diruser_2", given_name="Impostor", event_id="evt_20000000000000009")
    assert again.status_code == 409


def test_deactivation_and_delete_remove_access_but_keep_the_record(send: Sender) -> None:
    send.user()
    send.user(id="diruser_2", email="grace@acme.example")
    assert send.user(EventType.USER_UPDATED, active=False).json()["status"] == "updated"
    state = send.user_state("diruser_1")
    assert state is not None and state["active"] is False
    assert send.user(EventType.USER_UPDATED, active=True).status_code == 200
    state = send.user_state("diruser_1")
    assert state is not None and state["active"] is True

    deleted = build_event(
        EventType.USER_DELETED,
        user_deleted_data(id="diruser_2", organization_id=ORG, email="grace@acme.example"),
        organization_id=ORG,
        environment_id=ENV,
    )
    response = send.event(deleted)
    assert response.status_code == 200 and response.json()["status"] == "deactivated"
    gone = send.user_state("diruser_2")
    assert gone is not None and gone["active"] is False
    never_seen = build_event(
        EventType.USER_DELETED,
        user_deleted_data(id="diruser_404", organization_id=ORG, email="x@acme.example"),
        organization_id=ORG,
        environment_id=ENV,
    )
    assert send.event(never_seen).json()["status"] == "tombstoned"


def test_group_events_and_recalculated_roles(send: Sender, app: RunningApp) -> None:
    group = group_data(
        id="dirgroup_1", directory_id="dir_1", display_name="Engineering", organization_id=ORG
    )
    created = build_event(EventType.GROUP_CREATED, group, organization_id=ORG, environment_id=ENV)
    assert send.event(created).json()["status"] == "group_saved"
    send.user(roles=["editor", "viewer"], groups=[("dirgroup_1", "Engineering")])
    deleted = build_event(
        EventType.GROUP_DELETED,
        group_deleted_data(
            id="dirgroup_1", directory_id="dir_1", display_name="Engineering", organization_id=ORG
        ),
        organization_id=ORG,
        environment_id=ENV,
    )
    assert send.event(deleted).json()["status"] == "group_deleted"
    assert app.store.groups()[0]["deleted"] is True
    # A create retried after the delete (redeliveries leave the original order) stays dead.
    late = build_event(
        EventType.GROUP_CREATED,
        group_data(
            id="dirgroup_1", directory_id="dir_1", display_name="Engineering", organization_id=ORG
        ),
        organization_id=ORG,
        environment_id=ENV,
    )
    assert send.event(late).json()["status"] == "ignored_deleted"
    assert app.store.groups()[0]["deleted"] is True
    # Scalekit follows a group deletion with user_updated carrying the recalculated roles.
    send.user(EventType.USER_UPDATED, roles=["viewer"], groups=[])
    state = send.user_state("diruser_1")
    assert state is not None and state["roles"] == ["viewer"]


def test_directory_events_are_acknowledged(send: Sender) -> None:
    from scim_readiness.events import directory_data

    event = build_event(
        EventType.DIRECTORY_ENABLED,
        directory_data(id="dir_1", organization_id=ORG),
        organization_id=ORG,
        environment_id=ENV,
    )
    assert send.event(event).json()["status"] == "directory_saved"


def test_unknown_event_types_are_ignored_with_200(send: Sender) -> None:
    event = build_event(
        "organization.directory.user_teleported",
        {"id": "diruser_9", "email": "t@acme.example"},
        organization_id=ORG,
        environment_id=ENV,
    )
    response = send.event(event)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert send.user_state("diruser_9") is None


def test_tenant_comes_from_the_organization_map(send: Sender, start_app: AppFactory) -> None:
    send.user(org=OTHER_ORG, id="diruser_7", email="g@globex.example")
    state = send.user_state("diruser_7")
    assert state is not None and state["tenant"] == "tenant-globex"
    unknown = send.user(org="org_99", id="diruser_8", email="u@nowhere.example")
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "organization_id"
    assert send.user_state("diruser_8") is None
    foreign_delete = build_event(
        EventType.USER_DELETED,
        user_deleted_data(id="diruser_7", organization_id="org_99", email="g@globex.example"),
        organization_id="org_99",
        environment_id=ENV,
    )
    assert send.event(foreign_delete).status_code == 422
    still = send.user_state("diruser_7")
    assert still is not None and still["active"] is True


@pytest.mark.parametrize(
    ("problem", "body", "field"),
    [
        ("not json", b'{"spec_version": "1", "id": ', None),
        ("not an object", b"[1, 2]", None),
        ("not utf-8", b"\xff\xfe\x00", None),
        ("nested 20,000 deep", b"[" * 20_000 + b"]" * 20_000, None),
        ("missing id", encode_body({"type": "organization.directory.user_created"}), "id"),
        ("missing data", None, "data"),
        ("missing email", None, "data.email"),
        ("email is a number", None, "data.email"),
        ("active is a string", None, "data.active"),
        ("roles not a list", None, "data.roles"),
        ("role without name", None, "data.roles[0].role_name"),
    ],
)
def test_invalid_payloads_get_actionable_400_and_leave_no_trace(
    send: Sender, app: RunningApp, problem: str, body: bytes | None, field: str | None
) -> None:
    if body is None:
        event = make_user_event()
        data = event["data"]
        if problem == "missing data":
            del event["data"]
        elif problem == "missing email":
            del data["email"]
        elif problem == "email is a number":
            data["email"] = 42
        elif problem == "active is a string":
            data["active"] = "false"
        elif problem == "roles not a list":
            data["roles"] = "admin"
        elif problem == "role without name":
            data["roles"] = [{"name": "admin"}]
        body = encode_body(event)
    response = send.raw(body)
    assert response.status_code == 400, (problem, response.text)
    answer = response.json()
    assert answer["detail"]
    if field is not None:
        assert answer["field"] == field
    assert app.store.count_users() == 0
    assert app.store.processed_event_count() == 0


def test_oversized_body_is_refused_with_413(send: Sender, app: RunningApp) -> None:
    event = make_user_event(department="x" * (300 * 1024))
    response = send.event(event)
    assert response.status_code == 413
    assert app.store.count_users() == 0
    assert send.client.get(app.health_url).status_code == 200


@pytest.mark.parametrize(
    "attack",
    ["unsigned", "wrong-secret", "tampered", "stale", "future", "malformed", "garbage-base64"],
)
def test_bad_signatures_get_401_and_leave_no_trace(
    send: Sender, app: RunningApp, attack: str
) -> None:
    event = make_user_event()
    body = encode_body(event)
    now = int(time.time())
    if attack == "unsigned":
        response = send.client.post(app.webhook_url, content=body)
    elif attack == "wrong-secret":
        response = send.raw(body, secret="whsec_" + "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldA==")
    elif attack == "tampered":
        headers = signed_headers(SECRET, event["id"], now, body)
        tampered = body.replace(b"Ada", b"Eve")
        response = send.client.post(app.webhook_url, content=tampered, headers=headers)
    elif attack == "stale":
        response = send.raw(body, timestamp=now - 6 * 60)
    elif attack == "future":
        response = send.raw(body, timestamp=now + 6 * 60)
    elif attack == "malformed":
        response = send.raw(body, headers={"webhook-signature": "not-a-signature"})
    else:
        response = send.raw(body, headers={"webhook-signature": "v1,@@@notbase64@@@"})
    assert response.status_code == 401, response.text
    assert "link" not in response.text
    assert app.store.count_users() == 0
    assert app.store.processed_event_count() == 0


def test_oversized_chunked_body_is_refused_while_streaming(send: Sender, app: RunningApp) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"id": "evt_1", "data": "'
        for _ in range(64):
            yield b"x" * 8192
        yield b'"}'

    response = send.client.post(app.webhook_url, content=chunks())
    assert response.status_code == 413
    assert "262144" in response.json()["detail"]
    assert app.store.processed_event_count() == 0


def test_racing_directory_users_with_one_email_leave_exactly_one(
    send: Sender, app: RunningApp
) -> None:
    rivals = [make_user_event(id=f"diruser_r{n}", email="shared@acme.example") for n in range(12)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        statuses = sorted(pool.map(lambda e: send.event(e).status_code, rivals))
    assert statuses == [200] + [409] * 11
    assert len(send.probe("/probe/users", email="shared@acme.example").json()["users"]) == 1


def test_rotated_and_reformatted_signatures_verify(send: Sender, app: RunningApp) -> None:
    from scim_readiness.events import sign

    event = make_user_event()
    reformatted = json.dumps(event, indent=2, sort_keys=True).encode()
    now = int(time.time())
    old = sign(
        "whsec_" + "b2xkIHNlY3JldCBvbGQgc2VjcmV0IG9sZCBzZWNyZXQ=", event["id"], now, reformatted
    )
    good = sign(SECRET, event["id"], now, reformatted)
    response = send.raw(
        reformatted,
        msg_id=event["id"],
        timestamp=now,
        headers={"webhook-signature": f"{old} {good}"},
    )
    assert response.status_code == 200, response.text
    assert send.user_state("diruser_1") is not None


def test_app_without_secret_fails_closed(start_app: AppFactory, sender_for) -> None:  # type: ignore[no-untyped-def]
    with start_app(webhook_secret=None) as running:
        send = sender_for(running)
        response = send.user()
        assert response.status_code == 503
        assert "secret" in response.json()["detail"]
        assert running.store.count_users() == 0


def test_probe_requires_its_token(send: Sender, app: RunningApp) -> None:
    send.user()
    url = app.probe["user_by_id"].format(directory_user_id="diruser_1")
    assert send.client.get(url).status_code == 401
    assert send.client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    portal_headers = app.portal_headers
    assert send.client.get(url, headers=portal_headers).status_code == 401
    assert send.client.get(url, headers=app.probe_headers).status_code == 200
    assert send.probe("/probe/users/diruser_404").status_code == 404
    assert send.probe("/probe/users/by-email").status_code == 400
    assert send.probe("/probe/users", cursor="abc").status_code == 400
    assert send.probe("/probe/users", limit="0").status_code == 400


def test_concurrent_deliveries_are_safe(send: Sender, app: RunningApp) -> None:
    events = [make_user_event(id=f"diruser_{n}", email=f"user{n}@acme.example") for n in range(40)]
    duplicates = [make_user_event(id="diruser_dup", email="dup@acme.example")] * 1
    twice = duplicates * 10  # the same event id, ten times at once
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda e: send.event(e).status_code, events + twice))
    assert statuses == [200] * 50
    assert app.store.count_users() == 41
    assert len(send.rows("diruser_dup")) == 1


def test_probe_pagination_over_5000_users(send: Sender, app: RunningApp) -> None:
    from scim_readiness.devstack.sampleapp.store import NewUser

    seeded = app.store.bulk_insert_users(
        NewUser(
            directory_user_id=f"diruser_{n:05d}",
            organization_id=ORG,
            email=f"u{n}@acme.example",
            name=f"User {n}",
            active=n % 7 != 0,
            roles=("viewer",),
            tenant=TENANT,
            attributes={},
        )
        for n in range(5000)
    )
    assert seeded == 5000
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        url = app.probe["list_users"].format(cursor=cursor)
        page = send.client.get(url, headers=app.probe_headers).json()
        seen.extend(user["directory_user_id"] for user in page["users"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 100
    assert len(seen) == 5000 == len(set(seen))
    assert pages == 10 or pages == 11
    small = send.probe("/probe/users", limit=7).json()
    assert len(small["users"]) == 7 and small["next_cursor"]
    other_tenant = send.probe("/probe/users", tenant="tenant-globex").json()
    assert other_tenant == {"users": [], "next_cursor": None}


def test_state_is_a_real_sqlite_file_per_run(
    start_app: AppFactory,
    sender_for: Callable[[RunningApp], Sender],
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.sqlite3"
    with start_app(db_path=db) as running:
        sender_for(running).user()
        assert running.db_path == db
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT directory_user_id FROM users").fetchall() == [("diruser_1",)]


def test_start_and_stop_are_clean(server_cert: ServerCert, local_ca: LocalCA) -> None:
    settings = AppSettings(webhook_secret=SECRET, tenant_by_org={ORG: TENANT})
    with serve_app(settings, server_cert, http_redirect=True) as running:
        with httpx.Client(verify=local_ca.client_context(), trust_env=False) as c:
            assert c.get(running.health_url).status_code == 200
            assert running.http_url is not None
            plain = c.get(running.http_url + "/webhooks/scalekit?x=1")
            assert plain.status_code == 301
            assert plain.headers["location"] == running.webhook_url + "?x=1"
        running.stop()
        with (
            pytest.raises(httpx.ConnectError),
            httpx.Client(verify=local_ca.client_context(), trust_env=False) as c,
        ):
            c.get(running.health_url)
    assert not running.db_path.exists()
    assert "probe_token" not in repr(settings) and settings.probe_token not in repr(settings)


def test_unknown_flaw_is_refused_with_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown flaw.*valid flaws: accept-stale-timestamp"):
        AppSettings(webhook_secret=SECRET, flaws=frozenset({"typo-flaw"}))


def test_busy_port_is_a_clear_error(server_cert: ServerCert, app: RunningApp) -> None:
    settings = AppSettings(webhook_secret=SECRET)
    with pytest.raises(RuntimeError, match="cannot listen on 127.0.0.1"):
        with serve_app(settings, server_cert, port=app.port):
            pass


def test_importing_the_package_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, scim_readiness.devstack.sampleapp;"
        "mods = ('scalekit', 'starlette', 'uvicorn', 'grpc');"
        "print([m for m in mods if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
