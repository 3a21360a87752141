"""Each flaw changes exactly the behaviour it names: the same scenario is run against a clean
app and against an app with only that flaw, and the observable outcomes differ as described."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from sampleapp.sampleapp_support import ORG, SECRET, TENANT, AppFactory, Sender, make_user_event
from scim_readiness.devstack.sampleapp import FLAWS, RunningApp
from scim_readiness.devstack.tls_ca import LocalCA
from scim_readiness.events import (
    EventType,
    build_event,
    encode_body,
    signed_headers,
    user_deleted_data,
)

Scenario = Callable[[Sender], Any]
SenderFor = Callable[[RunningApp], Sender]


def run(start_app: AppFactory, sender_for: SenderFor, scenario: Scenario, **settings: Any) -> Any:
    with start_app(**settings) as running:
        return scenario(sender_for(running))


def compare(
    start_app: AppFactory,
    sender_for: SenderFor,
    flaw: str,
    scenario: Scenario,
    **settings: Any,
) -> tuple[Any, Any]:
    clean = run(start_app, sender_for, scenario, **settings)
    flawed = run(start_app, sender_for, scenario, flaws={flaw}, **settings)
    return clean, flawed


def state(send: Sender, directory_user_id: str = "diruser_1") -> dict[str, Any] | None:
    return send.user_state(directory_user_id)


def test_every_flaw_has_a_test_below() -> None:
    tested = {
        name.removeprefix("test_flaw_").replace("_", "-")
        for name in globals()
        if name.startswith("test_flaw_")
    }
    assert tested == set(FLAWS)
    assert all(description.strip() for description in FLAWS.values())


def test_flaw_no_signature_check(start_app: AppFactory, sender_for: SenderFor) -> None:
    def unsigned(send: Sender) -> tuple[int, bool]:
        body = encode_body(make_user_event())
        response = send.client.post(send.app.webhook_url, content=body)
        return response.status_code, state(send) is not None

    clean, flawed = compare(start_app, sender_for, "no-signature-check", unsigned)
    assert clean == (401, False)
    assert flawed == (200, True)


def test_flaw_skip_verify_when_secret_missing(start_app: AppFactory, sender_for: SenderFor) -> None:
    def forged(send: Sender) -> tuple[int, bool]:
        response = send.user(secret="whsec_Zm9yZ2VkIGJ5IGFuIGF0dGFja2VyIGZvcmdlZCBieQ==")
        return response.status_code, state(send) is not None

    clean, flawed = compare(
        start_app, sender_for, "skip-verify-when-secret-missing", forged, webhook_secret=None
    )
    assert clean == (503, False)  # fails closed: no secret, no processing
    assert flawed == (200, True)
    # With its secret configured the flawed app still verifies.
    configured = run(start_app, sender_for, forged, flaws={"skip-verify-when-secret-missing"})
    assert configured == (401, False)


def test_flaw_verify_reserialized_body(start_app: AppFactory, sender_for: SenderFor) -> None:
    def compact_then_reformatted(send: Sender) -> tuple[int, int]:
        compact = send.user().status_code
        event = make_user_event(id="diruser_2", email="grace@acme.example")
        pretty = json.dumps(event, indent=2, sort_keys=True).encode()
        return compact, send.raw(pretty, msg_id=event["id"]).status_code

    clean, flawed = compare(
        start_app, sender_for, "verify-reserialized-body", compact_then_reformatted
    )
    assert clean == (200, 200)
    assert flawed == (200, 401)


def test_flaw_accept_stale_timestamp(start_app: AppFactory, sender_for: SenderFor) -> None:
    def stale(send: Sender) -> tuple[int, int]:
        old = send.user(timestamp=int(time.time()) - 10 * 60).status_code
        forged = send.user(
            id="diruser_2",
            email="b@acme.example",
            timestamp=int(time.time()) - 10 * 60,
            secret="whsec_Zm9yZ2VkIGJ5IGFuIGF0dGFja2VyIGZvcmdlZCBieQ==",
        ).status_code
        return old, forged

    clean, flawed = compare(start_app, sender_for, "accept-stale-timestamp", stale)
    assert clean == (401, 401)
    assert flawed == (200, 401)  # the HMAC is still checked


def test_flaw_svix_headers_only(start_app: AppFactory, sender_for: SenderFor) -> None:
    def families(send: Sender) -> tuple[int, int]:
        webhook_only = send.user(families=("webhook",)).status_code
        svix_only = send.user(
            id="diruser_2", email="b@acme.example", families=("svix",)
        ).status_code
        return webhook_only, svix_only

    clean, flawed = compare(start_app, sender_for, "svix-headers-only", families)
    assert clean == (200, 401)  # the SDK reads webhook-* headers
    assert flawed == (401, 200)


def test_flaw_create_not_idempotent(start_app: AppFactory, sender_for: SenderFor) -> None:
    def twice(send: Sender) -> tuple[int, int]:
        event = make_user_event()
        send.event(event)
        send.event(event)  # the same delivery again
        send.user()  # the same user under a new event id
        return len(send.rows("diruser_1")), send.app.store.count_users()

    clean, flawed = compare(start_app, sender_for, "create-not-idempotent", twice)
    assert clean == (1, 1)
    assert flawed == (3, 3)


def test_flaw_merge_on_email(start_app: AppFactory, sender_for: SenderFor) -> None:
    def same_email(send: Sender) -> tuple[int, Any, Any]:
        send.user()
        status = send.user(id="diruser_2", given_name="Impostor").status_code
        first = state(send, "diruser_1")
        second = state(send, "diruser_2")
        return status, first and first["name"], second and second["name"]

    clean, flawed = compare(start_app, sender_for, "merge-on-email", same_email)
    assert clean == (409, "Ada Lovelace", None)
    assert flawed == (200, None, "Impostor Lovelace")


def test_flaw_ascii_only_names(start_app: AppFactory, sender_for: SenderFor) -> None:
    def names(send: Sender) -> tuple[int, int, Any]:
        plain = send.user(given_name="Siobhan", family_name="O'Connor").status_code
        accented = send.user(
            id="diruser_2", email="zoe@acme.example", given_name="Zoë", family_name="佐藤"
        ).status_code
        second = state(send, "diruser_2")
        return plain, accented, second and second["name"]

    clean, flawed = compare(start_app, sender_for, "ascii-only-names", names)
    assert clean == (200, 200, "Zoë 佐藤")
    assert flawed == (200, 500, None)


def test_flaw_case_sensitive_email(start_app: AppFactory, sender_for: SenderFor) -> None:
    def case_variant(send: Sender) -> tuple[int, int, bool]:
        send.user(email="Ada.Lovelace@Acme.example")
        variant = send.user(id="diruser_2", email="ada.lovelace@acme.example").status_code
        exact = send.user(id="diruser_3", email="Ada.Lovelace@Acme.example").status_code
        return variant, exact, state(send, "diruser_2") is not None

    clean, flawed = compare(start_app, sender_for, "case-sensitive-email", case_variant)
    assert clean == (409, 409, False)
    assert flawed == (200, 409, True)


def test_flaw_ignore_deactivation(start_app: AppFactory, sender_for: SenderFor) -> None:
    def deactivate(send: Sender) -> tuple[int, bool]:
        send.user()
        response = send.user(EventType.USER_UPDATED, active=False)
        user = state(send)
        assert user is not None
        return response.status_code, user["active"]

    clean, flawed = compare(start_app, sender_for, "ignore-deactivation", deactivate)
    assert clean == (200, False)
    assert flawed == (200, True)


def test_flaw_ignore_delete(start_app: AppFactory, sender_for: SenderFor) -> None:
    def delete(send: Sender) -> tuple[int, bool]:
        send.user()
        event = build_event(
            EventType.USER_DELETED,
            user_deleted_data(id="diruser_1", organization_id=ORG, email="ada@acme.example"),
            organization_id=ORG,
            environment_id="env_1",
        )
        response = send.event(event)
        user = state(send)
        assert user is not None
        return response.status_code, user["active"]

    clean, flawed = compare(start_app, sender_for, "ignore-delete", delete)
    assert clean == (200, False)
    assert flawed == (200, True)


def roles_after_two_events(send: Sender) -> tuple[list[str], list[str]]:
    send.user(roles=["editor", "admin"])
    created = state(send)
    send.user(EventType.USER_UPDATED, roles=["viewer", "billing"])
    updated = state(send)
    assert created is not None and updated is not None
    return created["roles"], updated["roles"]


def test_flaw_roles_ignored(start_app: AppFactory, sender_for: SenderFor) -> None:
    clean, flawed = compare(start_app, sender_for, "roles-ignored", roles_after_two_events)
    assert clean == (["editor", "admin"], ["viewer", "billing"])
    assert flawed == ([], [])


def test_flaw_first_role_only(start_app: AppFactory, sender_for: SenderFor) -> None:
    clean, flawed = compare(start_app, sender_for, "first-role-only", roles_after_two_events)
    assert clean == (["editor", "admin"], ["viewer", "billing"])
    assert flawed == (["editor"], ["viewer"])


def test_flaw_crash_on_unknown_event(start_app: AppFactory, sender_for: SenderFor) -> None:
    def unknown(send: Sender) -> tuple[int, int]:
        event = build_event(
            "organization.directory.user_promoted", {}, organization_id=ORG, environment_id="env_1"
        )
        return send.event(event).status_code, send.user().status_code

    clean, flawed = compare(start_app, sender_for, "crash-on-unknown-event", unknown)
    assert clean == (200, 200)
    assert flawed == (500, 200)


def test_flaw_crash_on_invalid_json(start_app: AppFactory, sender_for: SenderFor) -> None:
    def broken(send: Sender) -> tuple[int, int, int]:
        not_json = send.raw(b'{"id": "evt_1", "type": ').status_code
        missing_field = send.raw(encode_body({"type": "x"})).status_code
        healthy = send.client.get(send.app.health_url).status_code
        return not_json, missing_field, healthy

    clean, flawed = compare(start_app, sender_for, "crash-on-invalid-json", broken)
    assert clean == (400, 400, 200)
    assert flawed == (500, 400, 200)


def test_flaw_slow_ack(start_app: AppFactory, sender_for: SenderFor) -> None:
    # Not a timing assertion: the flawed app is told to hold its answer for far longer than
    # the client is willing to wait, so it cannot answer in time however fast the machine.
    def impatient(send: Sender) -> tuple[str, bool]:
        event = make_user_event()
        body = encode_body(event)
        headers = signed_headers(SECRET, event["id"], int(time.time()), body)
        try:
            response = send.client.post(
                send.app.webhook_url,
                content=body,
                headers=headers,
                timeout=httpx.Timeout(10.0, read=1.0),
            )
            outcome = str(response.status_code)
        except httpx.ReadTimeout:
            outcome = "timeout"
        return outcome, state(send) is not None

    clean, flawed = compare(start_app, sender_for, "slow-ack", impatient, slow_ack_s=60.0)
    assert clean == ("200", True)
    assert flawed == ("timeout", True)  # the work is done, the acknowledgement is late


def test_flaw_probe_404(start_app: AppFactory, sender_for: SenderFor) -> None:
    def probe_routes(send: Sender) -> tuple[int, int, int, int]:
        assert send.user().status_code == 200
        return (
            send.probe("/probe/users/diruser_1").status_code,
            send.probe("/probe/users/by-email", email="ada@acme.example").status_code,
            send.probe("/probe/users").status_code,
            send.user(id="diruser_2", email="bob@acme.example").status_code,
        )

    clean, flawed = compare(start_app, sender_for, "probe-404", probe_routes)
    assert clean[0] == clean[2] == 200
    assert flawed[:3] == (404, 404, 404)
    assert clean[3] == flawed[3] == 200  # the webhook itself is unchanged


def test_flaw_webhook_hangs(start_app: AppFactory, sender_for: SenderFor) -> None:
    # Not a timing assertion: the flawed app holds every request for an hour.
    def impatient(send: Sender) -> str:
        event = make_user_event()
        body = encode_body(event)
        headers = signed_headers(SECRET, event["id"], int(time.time()), body)
        try:
            response = send.client.post(
                send.app.webhook_url,
                content=body,
                headers=headers,
                timeout=httpx.Timeout(10.0, read=1.0),
            )
        except httpx.ReadTimeout:
            return "timeout"
        return str(response.status_code)

    clean, flawed = compare(start_app, sender_for, "webhook-hangs", impatient)
    assert (clean, flawed) == ("200", "timeout")


def test_flaw_portal_link_unauthenticated(start_app: AppFactory, sender_for: SenderFor) -> None:
    def anonymous(send: Sender) -> tuple[int, int]:
        url = send.app.portal_link_url
        anonymous = send.client.get(url).status_code
        authenticated = send.client.get(url, headers=send.app.portal_headers).status_code
        return anonymous, authenticated

    clean, flawed = compare(start_app, sender_for, "portal-link-unauthenticated", anonymous)
    # No Scalekit environment here, so an accepted caller gets 503 instead of a link.
    assert clean == (401, 503)
    assert flawed == (503, 503)


def test_flaw_wrong_tenant_mapping(start_app: AppFactory, sender_for: SenderFor) -> None:
    def tenant(send: Sender) -> str:
        send.user()
        user = state(send)
        assert user is not None
        return str(user["tenant"])

    clean, flawed = compare(start_app, sender_for, "wrong-tenant-mapping", tenant)
    assert clean == TENANT
    assert flawed == ORG


def test_flaw_legacy_event_names(start_app: AppFactory, sender_for: SenderFor) -> None:
    def current_then_legacy(send: Sender) -> tuple[int, bool, int, bool]:
        current = send.user()
        applied = state(send) is not None
        legacy = send.user("scalekit.dir.user.create", id="diruser_2", email="b@acme.example")
        return (
            current.status_code,
            applied,
            legacy.status_code,
            state(send, "diruser_2") is not None,
        )

    clean, flawed = compare(start_app, sender_for, "legacy-event-names", current_then_legacy)
    assert clean == (200, True, 200, False)  # an unknown (old) name is ignored
    assert flawed == (200, False, 200, True)


# ---------------------------------------------------------------- delivery semantics


def at(seconds: float, event_type: EventType | str = EventType.USER_CREATED, **fields: Any) -> Any:
    """A user event whose occurred_at is ``seconds`` from a fixed moment."""
    import datetime as dt

    event = make_user_event(event_type, **fields)
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    event["occurred_at"] = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return event


def deleted(seconds: float, directory_user_id: str = "diruser_1") -> Any:
    import datetime as dt

    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    return build_event(
        EventType.USER_DELETED,
        user_deleted_data(id=directory_user_id, organization_id=ORG, email="ada@acme.example"),
        organization_id=ORG,
        environment_id="env_1",
        occurred_at=moment,
    )


def test_flaw_stale_update_wins(start_app: AppFactory, sender_for: SenderFor) -> None:
    def reordered(send: Sender) -> Any:
        send.event(at(0))
        send.event(at(20, EventType.USER_UPDATED, family_name="Newer"))
        send.event(at(10, EventType.USER_UPDATED, family_name="Older"))  # delivered last
        user = state(send)
        return user and user["name"]

    clean, flawed = compare(start_app, sender_for, "stale-update-wins", reordered)
    assert clean == "Ada Newer"
    assert flawed == "Ada Older"


def test_flaw_update_resurrects_deleted(start_app: AppFactory, sender_for: SenderFor) -> None:
    def late_update(send: Sender) -> Any:
        send.event(at(0))
        send.event(deleted(20))
        status = send.event(at(10, EventType.USER_UPDATED, active=True)).status_code
        user = state(send)
        return status, user and user["active"]

    clean, flawed = compare(start_app, sender_for, "update-resurrects-deleted", late_update)
    assert clean == (200, False)
    assert flawed == (200, True)


def test_flaw_delete_before_create_forgotten(start_app: AppFactory, sender_for: SenderFor) -> None:
    def delete_first(send: Sender) -> Any:
        send.event(deleted(20))
        send.event(at(10))
        user = state(send)
        return user is not None and user["active"]

    clean, flawed = compare(start_app, sender_for, "delete-before-create-forgotten", delete_first)
    assert clean is False
    assert flawed is True


def request_bytes(send: Sender, event: dict[str, Any]) -> bytes:
    from urllib.parse import urlsplit

    body = encode_body(event)
    headers = signed_headers(SECRET, event["id"], int(time.time()), body)
    url = urlsplit(send.app.webhook_url)
    head = f"POST {url.path} HTTP/1.1\r\nhost: {url.netloc}\r\n"
    head += "content-type: application/json\r\nconnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"content-length: {len(body)}\r\n\r\n"
    return head.encode() + body


def connect(send: Sender, local_ca: LocalCA) -> Any:
    import socket

    host, port = "127.0.0.1", send.app.port
    raw = socket.create_connection((host, port))
    return local_ca.client_context().wrap_socket(raw, server_hostname=host)


def test_flaw_racy_duplicate_deliveries(
    start_app: AppFactory, sender_for: SenderFor, local_ca: LocalCA
) -> None:
    def at_once(send: Sender) -> Any:
        data = request_bytes(send, make_user_event())
        connections = [connect(send, local_ca) for _ in range(6)]  # all open, then all sent
        for tls in connections:
            tls.sendall(data)
        answers = []
        for tls in connections:
            with tls:
                answers.append(tls.recv(64).split(b" ")[1])
        return max(int(status) for status in answers) < 500, len(send.rows("diruser_1"))

    clean, flawed = compare(start_app, sender_for, "racy-duplicate-deliveries", at_once)
    assert clean == (True, 1)
    assert flawed[0] is True and flawed[1] > 1


def test_flaw_dedupe_before_apply(
    start_app: AppFactory, sender_for: SenderFor, local_ca: LocalCA
) -> None:
    def dropped_then_redelivered(send: Sender) -> Any:
        event = make_user_event()
        with connect(send, local_ca) as tls:
            tls.sendall(request_bytes(send, event))
            time.sleep(0.15)  # cut before reading the answer
        time.sleep(0.6)
        again = send.event(event)  # the redelivery: same webhook-id
        return again.status_code, len(send.rows("diruser_1"))

    clean, flawed = compare(start_app, sender_for, "dedupe-before-apply", dropped_then_redelivered)
    assert clean == (200, 1)
    assert flawed == (200, 0)


def test_flaw_email_reuse_refused(start_app: AppFactory, sender_for: SenderFor) -> None:
    def rehire(send: Sender) -> Any:
        send.user()
        send.event(deleted(0))
        status = send.user(id="diruser_2").status_code
        user = state(send, "diruser_2")
        return status, user is not None and user["active"]

    clean, flawed = compare(start_app, sender_for, "email-reuse-refused", rehire)
    assert clean == (200, True)
    assert flawed == (409, False)


def test_flaw_email_unique_across_tenants(start_app: AppFactory, sender_for: SenderFor) -> None:
    from sampleapp.sampleapp_support import OTHER_ORG

    def second_tenant(send: Sender) -> Any:
        send.user()
        status = send.user(id="diruser_2", org=OTHER_ORG, organization_id=OTHER_ORG).status_code
        return status, state(send, "diruser_2") is not None

    clean, flawed = compare(start_app, sender_for, "email-unique-across-tenants", second_tenant)
    assert clean == (200, True)
    assert flawed == (409, False)


def test_flaw_directory_disabled_ignored(start_app: AppFactory, sender_for: SenderFor) -> None:
    from scim_readiness.events import directory_data

    def disable(send: Sender) -> Any:
        send.user()
        event = build_event(
            EventType.DIRECTORY_DISABLED,
            directory_data(id="dir_1", organization_id=ORG, enabled=False),
            organization_id=ORG,
            environment_id="env_1",
        )
        status = send.event(event).status_code
        user = state(send)
        return status, user is not None and user["active"]

    clean, flawed = compare(start_app, sender_for, "directory-disabled-ignored", disable)
    assert clean == (200, False)
    assert flawed == (200, True)


def test_flaw_roles_follow_group_name(start_app: AppFactory, sender_for: SenderFor) -> None:
    from scim_readiness.events import group_data

    def rename(send: Sender) -> Any:
        def group(name: str, event_type: EventType) -> Any:
            data = group_data(
                id="dirgroup_1", directory_id="dir_1", display_name=name, organization_id=ORG
            )
            return build_event(event_type, data, organization_id=ORG, environment_id="env_1")

        send.event(group("Engineering", EventType.GROUP_CREATED))
        send.user(groups=[("dirgroup_1", "Engineering")], roles=["editor"])
        send.event(group("Engineering (renamed)", EventType.GROUP_UPDATED))
        user = state(send)
        return user and user["roles"]

    clean, flawed = compare(start_app, sender_for, "roles-follow-group-name", rename)
    assert clean == ["editor"]
    assert flawed == []


def test_flaw_slow_update_backlog(start_app: AppFactory, sender_for: SenderFor) -> None:
    def updates(send: Sender) -> Any:
        send.user()
        statuses = {
            send.user(EventType.USER_UPDATED, family_name=f"V{n}").status_code for n in range(4)
        }
        user = state(send)
        return statuses, user and user["name"]

    clean, flawed = compare(start_app, sender_for, "slow-update-backlog", updates)
    assert clean == ({200}, "Ada V3")
    # Acknowledged at once, applied later: right after the burst the app still shows the old.
    assert flawed == ({202}, "Ada Lovelace")


def test_flaw_sessions_survive_deprovisioning(start_app: AppFactory, sender_for: SenderFor) -> None:
    def after_deactivation(send: Sender) -> Any:
        send.user()
        issued = send.client.post(
            send.app.access["issue"].format(directory_user_id="diruser_1"),
            headers=send.app.probe_headers,
        ).json()
        before = me(send, issued)
        send.user(EventType.USER_UPDATED, active=False)
        return before, me(send, issued)

    clean, flawed = compare(
        start_app, sender_for, "sessions-survive-deprovisioning", after_deactivation
    )
    assert clean == ((200, 200), (401, 401))
    assert flawed == ((200, 200), (200, 200))


def me(send: Sender, issued: dict[str, str]) -> tuple[int, int]:
    url = send.app.access["check"]
    session = send.client.get(url, headers={"Cookie": f"session={issued['session']}"}).status_code
    token = send.client.get(
        url, headers={"Authorization": f"Bearer {issued['api_token']}"}
    ).status_code
    return session, token
