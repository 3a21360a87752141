"""The unmodified Scalekit SDK against the emulator: every call the checks use."""

from __future__ import annotations

import time

import grpc
import httpx
import pytest

from scim_readiness.devstack.emulator import Emulator, start_emulator

from .conftest import seed_with


def _client(emu: Emulator) -> httpx.Client:
    return httpx.Client(verify=emu.ca.client_context(), trust_env=False)


@pytest.fixture
def sdk(emulator: Emulator):  # type: ignore[no-untyped-def]
    from scalekit import ScalekitClient

    return ScalekitClient(emulator.env_url, emulator.client_id, emulator.client_secret)


def test_token_endpoint_issues_bearer_tokens(emulator: Emulator) -> None:
    with _client(emulator) as client:
        ok = client.post(
            f"{emulator.env_url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": emulator.client_id,
                "client_secret": emulator.client_secret,
            },
        )
        bad = client.post(
            f"{emulator.env_url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": emulator.client_id,
                "client_secret": "not-the-secret",
            },
        )
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"] and body["expires_in"] == 3600
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"


def test_certificate_covers_localhost_and_loopback_ip(emulator: Emulator) -> None:
    with _client(emulator) as client:
        for host in ("localhost", "127.0.0.1"):
            response = client.get(f"https://{host}:{emulator.port}/keys")
            assert response.status_code == 200, host


def test_organizations(sdk, emulator: Emulator) -> None:  # type: ignore[no-untyped-def]
    org = sdk.organization.get_organization(emulator.organization_id)[0].organization
    assert org.display_name == "Acme Corp"
    assert org.external_id == "tenant-acme"
    assert {f.name: f.enabled for f in org.settings.features} == {"dir_sync": True, "sso": False}

    by_ext = sdk.organization.get_organization_by_external_id("tenant-acme")[0].organization
    assert by_ext.id == emulator.organization_id

    listed = sdk.organization.list_organizations(page_size=10)[0]
    assert [o.id for o in listed.organizations] == [emulator.organization_id]
    assert listed.total_size == 1


def test_unknown_ids_are_not_found(sdk, emulator: Emulator) -> None:  # type: ignore[no-untyped-def]
    from scalekit.common.exceptions import ScalekitNotFoundException

    with pytest.raises(ScalekitNotFoundException):
        sdk.organization.get_organization("org_404")
    with pytest.raises(ScalekitNotFoundException):
        sdk.organization.get_organization_by_external_id("tenant-nobody")
    with pytest.raises(ScalekitNotFoundException):
        sdk.directory.get_directory(emulator.organization_id, "dir_404")
    with pytest.raises(ScalekitNotFoundException):
        # a real directory, asked for under the wrong organisation
        sdk.directory.get_directory("org_other", emulator.directory_id)


def test_directories(sdk, emulator: Emulator) -> None:  # type: ignore[no-untyped-def]
    listed = sdk.directory.list_directories(emulator.organization_id)[0].directories
    assert [d.id for d in listed] == [emulator.directory_id]
    directory = sdk.directory.get_directory(emulator.organization_id, emulator.directory_id)[
        0
    ].directory
    assert directory.enabled
    assert directory.directory_endpoint == emulator.scim_url()
    assert directory.total_users == 5 and directory.stats.total_groups == 2
    (secret,) = directory.secrets
    assert secret.status == 0  # ACTIVE
    assert secret.secret_suffix == emulator.scim_token()[-4:]
    assert secret.last_used_time.seconds > 0
    groups = {
        g.id: g.display_name
        for g in emulator.state.directory(emulator.directory_id).groups.values()
    }
    assignments = {groups[a.group_id]: a.role_name for a in directory.role_assignments.assignments}
    assert assignments == {"Engineering": "editor", "Admins": "admin"}


def test_roles(sdk) -> None:  # type: ignore[no-untyped-def]
    roles = sdk.roles.list_roles()[0].roles
    assert [r.name for r in roles] == ["admin", "editor", "viewer"]


def test_portal_link_serves_page_once_with_frame_ancestors(emulator: Emulator) -> None:
    from scalekit import ScalekitClient
    from scalekit.v1.organizations.organizations_pb2 import Feature

    seed = seed_with(
        portal=emulator.seed.portal.model_copy(
            update={"frame_ancestors": ["https://app.example"], "domain": None}
        )
    )
    with start_emulator(seed) as emu:
        sdk = ScalekitClient(emu.env_url, emu.client_id, emu.client_secret)
        link = sdk.organization.generate_portal_link(emu.organization_id, [Feature.dir_sync])
        assert link.location.startswith(f"{emu.env_url}/portal/")
        lifetime = link.expire_time.seconds - time.time()
        assert 0 < lifetime <= 60
        with _client(emu) as client:
            first = client.get(link.location)
            again = client.get(link.location)
            unknown = client.get(f"{emu.env_url}/portal/nope")
    assert first.status_code == 200
    assert first.headers["content-security-policy"] == "frame-ancestors https://app.example"
    assert again.status_code == 410
    assert unknown.status_code == 404


def test_portal_link_on_custom_domain(emulator: Emulator) -> None:
    from scalekit import ScalekitClient

    with start_emulator() as probe:
        port = probe.port  # only to learn a free port; the real one is chosen below
    del port
    seed = seed_with(portal=emulator.seed.portal.model_copy(update={"domain": "127.0.0.1:1"}))
    with start_emulator(seed) as emu:
        emu.state.seed.portal.domain = f"127.0.0.1:{emu.port}"
        sdk = ScalekitClient(emu.env_url, emu.client_id, emu.client_secret)
        link = sdk.organization.generate_portal_link(emu.organization_id)
        assert link.location.startswith(f"https://127.0.0.1:{emu.port}/portal/")
        with _client(emu) as client:
            assert client.get(link.location).status_code == 200


def _raw_list_users(emu: Emulator, token: str, **fields):  # type: ignore[no-untyped-def]
    from scalekit.v1.directories import directories_pb2 as dpb
    from scalekit.v1.directories.directories_pb2_grpc import DirectoryServiceStub

    creds = grpc.ssl_channel_credentials(emu.ca_path.read_bytes())
    with grpc.secure_channel(f"localhost:{emu.port}", creds) as channel:
        stub = DirectoryServiceStub(channel)
        request = dpb.ListDirectoryUsersRequest(
            organization_id=emu.organization_id, directory_id=emu.directory_id, **fields
        )
        return stub.ListDirectoryUsers(
            request, metadata=(("authorization", f"Bearer {token}"),), timeout=5
        )


def test_grpc_requires_a_valid_bearer_token(emulator: Emulator) -> None:
    with pytest.raises(grpc.RpcError) as missing:
        _raw_list_users(emulator, "made-up")
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_expired_token_is_refused(emulator: Emulator) -> None:
    with start_emulator(seed_with(token_lifetime_s=0.3)) as emu:
        token, _ = emu.state.issue_token()
        assert len(_raw_list_users(emu, token).users) == 5
        deadline = time.time() + 5
        while emu.state.token_valid(token) and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(grpc.RpcError) as expired:
            _raw_list_users(emu, token)
    assert expired.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_sdk_recovers_from_token_expiry_by_reauthenticating() -> None:
    from scalekit import ScalekitClient

    with start_emulator(seed_with(token_lifetime_s=0.3)) as emu:
        sdk = ScalekitClient(emu.env_url, emu.client_id, emu.client_secret)
        first = sdk.core_client.access_token
        time.sleep(0.4)
        org = sdk.organization.get_organization(emu.organization_id)[0].organization
        assert org.id == emu.organization_id
        assert sdk.core_client.access_token != first


def test_page_size_is_capped_at_30(emulator: Emulator) -> None:
    token, _ = emulator.state.issue_token()
    assert len(_raw_list_users(emulator, token, page_size=30).users) == 5
    with pytest.raises(grpc.RpcError) as too_big:
        _raw_list_users(emulator, token, page_size=31)
    assert too_big.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "30" in (too_big.value.details() or "")


def test_bad_page_token_is_invalid_argument(emulator: Emulator) -> None:
    token, _ = emulator.state.issue_token()
    with pytest.raises(grpc.RpcError) as bad:
        _raw_list_users(emulator, token, page_token="%%%")
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_paging_visits_every_user_once_and_survives_deletes(emulator: Emulator) -> None:
    emulator.generate_users(n=95)
    token, _ = emulator.state.issue_token()
    seen: list[str] = []
    page_token = ""
    directory = emulator.state.directory(emulator.directory_id)
    pages = 0
    while True:
        response = _raw_list_users(emulator, token, page_size=30, page_token=page_token)
        seen.extend(u.id for u in response.users)
        pages += 1
        if pages == 2:
            # A user already seen disappears mid-listing: nobody after them may be skipped.
            emulator.state.delete_user(directory, directory.users[seen[0]])
        page_token = response.next_page_token
        if not page_token:
            break
    assert pages == 4
    assert len(seen) == len(set(seen)) == 100


def test_sdk_list_directory_users_defect_still_present(sdk, emulator: Emulator) -> None:  # type: ignore[no-untyped-def]
    """When this fails, the SDK has fixed list_directory_users: the grpc_exec workaround in
    clients/scalekit.py (``_pages``) can go, and this test with it."""
    from scim_readiness.clients.scalekit import sdk_list_users_defect_present

    assert sdk_list_users_defect_present(sdk, emulator.organization_id, emulator.directory_id)
    with pytest.raises(AttributeError, match="users"):
        sdk.directory.list_directory_users(emulator.organization_id, emulator.directory_id)
    with pytest.raises(AttributeError, match="groups"):
        sdk.directory.list_directory_groups(emulator.organization_id, emulator.directory_id)


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [(["h2"], "h2"), (["h2", "http/1.1"], "http/1.1"), (["http/1.1"], "http/1.1")],
)
def test_alpn_gives_h2_only_to_clients_that_offer_nothing_else(
    emulator: Emulator, offered: list[str], chosen: str
) -> None:
    import socket

    context = emulator.ca.client_context()
    context.set_alpn_protocols(offered)
    with (
        socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() == chosen


def test_portal_without_allowed_ancestors_forbids_framing(emulator: Emulator) -> None:
    emulator.state.seed.portal.frame_ancestors = []
    link = emulator.state.new_portal_link(emulator.organization_id, ("dir_sync",))
    with _client(emulator) as client:
        page = client.get(f"{emulator.env_url}/portal/{link.token}")
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_access_tokens_are_jwts_the_sdk_validates_with_the_jwks(emulator: Emulator) -> None:
    from scalekit import ScalekitClient

    sdk = ScalekitClient(emulator.env_url, emulator.client_id, emulator.client_secret)
    token = sdk.core_client.access_token
    assert token.count(".") == 2  # a JWT, not an opaque string
    assert sdk.validate_access_token(token) is True
    claims = sdk.validate_access_token_and_get_claims(token)
    assert claims["iss"] == emulator.env_url and claims["client_id"] == emulator.client_id
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert sdk.validate_access_token(forged) is False
    with _client(emulator) as client:
        (key,) = client.get(f"{emulator.env_url}/keys").json()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and "d" not in key


def test_a_token_signed_by_the_key_is_accepted_after_a_restart() -> None:
    from scim_readiness.devstack.emulator.tokens import SigningKey

    key = SigningKey.generate()
    with start_emulator() as first:
        first.state.signing_key = key
        token, _ = first.state.issue_token()
    with start_emulator() as second:
        assert not second.state.token_valid(token)  # another key: refused
        second.state.signing_key = key
        assert second.state.token_valid(token)
        assert len(_raw_list_users(second, token).users) == 5
