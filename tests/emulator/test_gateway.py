"""The project's Scalekit client (clients/scalekit.py) against the emulator, including the
failure modes every check must survive: bad secret, server gone, hung method."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from pydantic import SecretStr

from scim_readiness.clients.scalekit import (
    ScalekitGateway,
    ScalekitNotFoundError,
    connect,
)
from scim_readiness.devstack.emulator import Emulator, start_emulator
from scim_readiness.errors import ScalekitAuthError, ScalekitError

from .conftest import run, section_for, tls_for


async def _connect(emu: Emulator, **kw: object) -> ScalekitGateway:
    return await connect(section_for(emu, **kw), tls_for(emu))  # type: ignore[arg-type]


def test_reads_organisation_directory_roles_and_link(emulator: Emulator) -> None:
    async def scenario() -> None:
        gw = await _connect(emulator)
        try:
            assert gw.token_latency_s > 0
            org = await gw.get_organization(emulator.organization_id)
            assert org.external_id == "tenant-acme"
            assert org.features == {"dir_sync": True, "sso": False}
            same = await gw.get_organization_by_external_id("tenant-acme")
            assert same == org

            (directory,) = await gw.list_directories(emulator.organization_id)
            again = await gw.get_directory(emulator.organization_id, emulator.directory_id)
            assert directory == again
            assert directory.enabled and directory.provider == "OKTA"
            assert directory.directory_type == "SCIM"
            assert directory.endpoint == emulator.scim_url()
            (secret,) = directory.secrets
            assert secret.status == "ACTIVE"
            assert secret.last_used_time is not None
            assert secret.expire_time is not None and secret.expire_time > dt.datetime.now(dt.UTC)
            assert {a.role_name for a in directory.role_assignments} == {"editor", "admin"}
            assert directory.stats.total_users == 5

            roles = await gw.list_roles()
            assert [r.name for r in roles] == ["admin", "editor", "viewer"]

            link = await gw.generate_portal_link(emulator.organization_id)
            assert link.location.startswith(emulator.env_url + "/portal/")
            assert link.expire_time is not None
            assert link.location not in repr(link)
        finally:
            await gw.aclose()

    run(scenario())


def test_users_and_groups_carry_groups_roles_and_active(emulator: Emulator) -> None:
    directory = emulator.state.directory(emulator.directory_id)
    grace = next(u for u in directory.users.values() if u.given_name == "Grace")
    emulator.state.update_user(directory, grace, active=False)

    async def scenario() -> tuple[list, list]:  # type: ignore[type-arg]
        gw = await _connect(emulator)
        try:
            users = [
                u
                async for page in gw.iter_directory_users(
                    emulator.organization_id, emulator.directory_id
                )
                for u in page
            ]
            groups = [
                g
                async for page in gw.iter_directory_groups(
                    emulator.organization_id, emulator.directory_id
                )
                for g in page
            ]
            return users, groups
        finally:
            await gw.aclose()

    users, groups = run(scenario())
    by_email = {u.email: u for u in users}
    assert len(users) == 5
    g = by_email["grace.hopper@acme-corp.example"]
    assert g.active is False
    assert {ref.display_name for ref in g.groups} == {"Engineering", "Admins"}
    assert g.roles is not None and set(g.roles) == {"editor", "admin"}
    assert by_email["edsger.dijkstra@acme-corp.example"].roles == ()
    assert by_email["ada.lovelace@acme-corp.example"].active is True
    assert {grp.display_name: grp.total_users for grp in groups} == {"Engineering": 3, "Admins": 2}


def test_pages_a_10000_user_directory(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    emulator.generate_users(n=9_995)
    started: list[str] = []
    original_start = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(self.name)
        original_start(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)

    async def scenario() -> tuple[int, set[str], int, int]:
        gw = await _connect(emulator)
        try:
            ids: set[str] = set()
            pages = 0
            count = 0
            async for page in gw.iter_directory_users(
                emulator.organization_id, emulator.directory_id
            ):
                pages += 1
                count += len(page)
                ids.update(u.id for u in page)
            return pages, ids, count, started.count("scalekit-sdk")
        finally:
            await gw.aclose()

    pages, ids, count, sdk_threads = run(scenario())
    assert count == len(ids) == 10_000
    assert pages == 334  # 30 per page: the API's cap
    assert ids == set(emulator.state.directory(emulator.directory_id).users)
    # 334 sequential calls shared one reused thread, not one new thread each
    assert sdk_threads == 1


def test_page_size_above_cap_is_refused_before_calling() -> None:
    async def scenario() -> None:
        gw = ScalekitGateway(object(), host="h", timeout_s=1, token_latency_s=0)
        with pytest.raises(ValueError, match="30"):
            async for _ in gw.iter_directory_users("org", "dir", page_size=31):
                pass

    run(scenario())


def test_unknown_organisation_is_not_found(emulator: Emulator) -> None:
    async def scenario() -> None:
        gw = await _connect(emulator)
        try:
            with pytest.raises(ScalekitNotFoundError, match="org_nope"):
                await gw.get_organization("org_nope")
        finally:
            await gw.aclose()

    run(scenario())


def test_bad_secret_is_an_auth_error_with_the_reason_and_without_the_secret(
    emulator: Emulator,
) -> None:
    wrong = "definitely-wrong-secret-123"
    with pytest.raises(ScalekitAuthError) as info:
        run(_connect(emulator, secret=wrong))
    text = str(info.value)
    assert "client authentication failed" in text  # the server's own reason
    assert wrong not in text
    assert emulator.client_secret not in text


def test_server_gone_before_connect_is_a_plain_network_error() -> None:
    with start_emulator() as emu:
        section = section_for(emu, timeout_s=5)
        tls = tls_for(emu)
    with pytest.raises(ScalekitError) as info:
        run(connect(section, tls))
    assert not isinstance(info.value, ScalekitAuthError)
    assert "refused" in str(info.value)
    assert f"localhost:{emu.port}" in str(info.value)


@pytest.mark.timeout(30)
def test_server_gone_after_connect_is_bounded() -> None:
    async def scenario(emu: Emulator) -> ScalekitGateway:
        return await _connect(emu, timeout_s=2)

    with start_emulator() as emu:
        gw = run(scenario(emu))
    with pytest.raises(ScalekitError) as info:
        run(gw.get_organization(emu.organization_id))
    assert "localhost" in str(info.value)


@pytest.mark.timeout(30)
def test_hung_method_is_cut_off_at_the_timeout(emulator: Emulator) -> None:
    emulator.delays["GetOrganization"] = 60

    async def scenario() -> None:
        gw = await _connect(emulator, timeout_s=1)
        try:
            with pytest.raises(ScalekitError, match=r"no answer from localhost:\d+ within 1 s"):
                await gw.get_organization(emulator.organization_id)
            # the connection stays usable for other calls, even while one is stuck
            stuck, roles = await asyncio.gather(
                gw.get_organization(emulator.organization_id),
                gw.list_roles(),
                return_exceptions=True,
            )
            assert isinstance(stuck, ScalekitError)
            assert [r.name for r in roles] == ["admin", "editor", "viewer"]  # type: ignore[union-attr]
        finally:
            await gw.aclose()

    run(scenario())


def test_missing_settings_are_named() -> None:
    from scim_readiness.clients.http import TlsSettings
    from scim_readiness.config import ScalekitSection

    with pytest.raises(ScalekitError, match="client_secret"):
        run(
            connect(
                ScalekitSection(environment_url="https://x.example", client_id="skc_1"),
                TlsSettings(),
            )
        )
    with pytest.raises(ScalekitError, match="https"):
        run(
            connect(
                ScalekitSection(
                    environment_url="http://x.example",
                    client_id="a",
                    client_secret=SecretStr("b"),
                ),
                TlsSettings(),
            )
        )


def test_untrusted_certificate_is_named_as_such(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scim_readiness.clients.http import TlsSettings
    from scim_readiness.devstack.tls_ca import LocalCA

    # connect() points requests at a bundle without the emulator's CA; restore afterwards.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.ca_path))
    monkeypatch.setenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", str(emulator.ca_path))
    stranger = LocalCA(tmp_path)
    with pytest.raises(ScalekitError) as info:
        run(connect(section_for(emulator), TlsSettings(ca_bundle=str(stranger.ca_path))))
    assert f"TLS certificate of localhost:{emulator.port} (token exchange) is not trusted" in str(
        info.value
    )
    assert "--ca-bundle PATH" in str(info.value)
