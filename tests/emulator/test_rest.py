"""Scalekit's REST API (/api/v1/...) answers as its gRPC services do, in the OpenAPI shapes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from scim_readiness.devstack.emulator import Emulator


@pytest.fixture
def rest(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emulator.env_url, verify=emulator.ca.client_context(), trust_env=False
    ) as client:
        token = client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": emulator.client_id,
                "client_secret": emulator.client_secret,
            },
        ).json()["access_token"]
        client.headers["authorization"] = f"Bearer {token}"
        yield client


def test_organizations_directories_roles_and_portal_links(
    emulator: Emulator, rest: httpx.Client
) -> None:
    org, directory = emulator.organization_id, emulator.directory_id
    got = rest.get(f"/api/v1/organizations/{org}").json()["organization"]
    assert got["display_name"] == "Acme Corp" and got["external_id"] == "tenant-acme"
    by_external = rest.get("/api/v1/organizations:external/tenant-acme").json()
    assert by_external["organization"]["id"] == org
    listed = rest.get("/api/v1/organizations", params={"page_size": 10}).json()
    assert [o["id"] for o in listed["organizations"]] == [org]
    (found,) = rest.get(f"/api/v1/organizations/{org}/directories").json()["directories"]
    assert found["id"] == directory and found["directory_endpoint"] == emulator.scim_url()
    one = rest.get(f"/api/v1/organizations/{org}/directories/{directory}").json()
    assert one["directory"]["directory_provider"] == "OKTA"
    groups = rest.get(f"/api/v1/organizations/{org}/directories/{directory}/groups").json()
    assert {g["display_name"] for g in groups["groups"]} == {"Engineering", "Admins"}
    roles = rest.get("/api/v1/roles").json()["roles"]
    assert {r["name"] for r in roles} == {"admin", "editor", "viewer"}
    link = rest.put(
        f"/api/v1/organizations/{org}/portal_links", params={"features": ["dir_sync"]}
    ).json()["link"]
    assert link["location"].startswith("https://") and link["expire_time"]


def test_users_page_by_token_with_the_limit_of_30(emulator: Emulator, rest: httpx.Client) -> None:
    path = f"/api/v1/organizations/{emulator.organization_id}/directories/{emulator.directory_id}"
    seen: list[str] = []
    token = ""
    while True:
        page = rest.get(
            f"{path}/users",
            params={"page_size": 2, "page_token": token, "include_detail": "true"},
        ).json()
        seen += [u["id"] for u in page["users"]]
        assert all("user_detail" in u for u in page["users"])
        token = page.get("next_page_token", "")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 5
    too_big = rest.get(f"{path}/users", params={"page_size": 31})
    assert too_big.status_code == 400
    assert too_big.json()["code"] == 3 and "30" in too_big.json()["message"]


def test_errors_are_the_grpc_errors_in_the_gateway_shape(
    emulator: Emulator, rest: httpx.Client
) -> None:
    missing = rest.get("/api/v1/organizations/org_404")
    assert missing.status_code == 404 and missing.json() == {
        "code": 5,
        "message": "organization org_404 not found",
        "details": [],
    }
    anonymous = httpx.get(
        f"{emulator.env_url}/api/v1/organizations/{emulator.organization_id}",
        verify=emulator.ca.client_context(),
        trust_env=False,
    )
    assert anonymous.status_code == 401 and anonymous.json()["code"] == 16
    not_emulated = rest.post("/api/v1/organizations", json={"display_name": "New"})
    assert not_emulated.status_code == 501 and not_emulated.json()["code"] == 12
    assert rest.get("/api/v1/nowhere").status_code == 404
    bad = rest.get("/api/v1/organizations", params={"page_size": "many"})
    assert bad.status_code == 400 and bad.json()["code"] == 3
