"""Helpers shared by the reference-app tests: constants and a signed-event sender."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx

from scim_readiness.devstack.sampleapp import RunningApp
from scim_readiness.events import EventType, build_event, encode_body, signed_headers, user_data

SECRET = "whsec_c2NpbS1yZWFkaW5lc3MtdGVzdC12ZWN0b3Ita2V5ISE="
ORG = "org_60219377000000001"
OTHER_ORG = "org_60219377000000002"
ENV = "env_60219376000000001"
TENANT = "tenant-acme"
TENANTS = {ORG: TENANT, OTHER_ORG: "tenant-globex"}

AppFactory = Callable[..., AbstractContextManager[RunningApp]]


class Sender:
    """Posts events to one app; every call returns the httpx response."""

    def __init__(self, client: httpx.Client, app: RunningApp) -> None:
        self.client = client
        self.app = app

    def raw(
        self,
        body: bytes,
        *,
        msg_id: str = "evt_10000000000000001",
        secret: str = SECRET,
        timestamp: int | None = None,
        families: tuple[str, ...] = ("webhook", "svix"),
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        ts = int(time.time()) if timestamp is None else timestamp
        sent = {"content-type": "application/json"}
        sent.update(signed_headers(secret, msg_id, ts, body, families=families))
        sent.update(headers or {})
        return self.client.post(self.app.webhook_url, content=body, headers=sent)

    def event(self, event: dict[str, Any], **options: Any) -> httpx.Response:
        return self.raw(encode_body(event), msg_id=event["id"], **options)

    def user(
        self,
        event_type: EventType | str = EventType.USER_CREATED,
        *,
        org: str = ORG,
        event_id: str | None = None,
        secret: str = SECRET,
        timestamp: int | None = None,
        families: tuple[str, ...] = ("webhook", "svix"),
        **fields: Any,
    ) -> httpx.Response:
        """A user event built from ``fields`` (user_data keywords), signed and sent."""
        event = make_user_event(event_type, org=org, event_id=event_id, **fields)
        return self.event(event, secret=secret, timestamp=timestamp, families=families)

    def probe(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(
            self.app.base_url + path, params=params, headers=self.app.probe_headers
        )

    def user_state(self, directory_user_id: str) -> dict[str, Any] | None:
        response = self.probe(f"/probe/users/{directory_user_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def rows(self, directory_user_id: str) -> list[dict[str, Any]]:
        response = self.probe("/probe/users", directory_user_id=directory_user_id)
        response.raise_for_status()
        return response.json()["users"]  # type: ignore[no-any-return]


def make_user_event(
    event_type: EventType | str = EventType.USER_CREATED,
    *,
    org: str = ORG,
    event_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "diruser_1",
        "organization_id": org,
        "email": "ada@acme.example",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "roles": ["editor"],
    }
    data.update(fields)
    return build_event(
        event_type,
        user_data(**data),
        organization_id=org,
        environment_id=ENV,
        event_id=event_id,
    )
