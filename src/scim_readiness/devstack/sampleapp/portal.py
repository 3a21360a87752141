"""Admin-portal links, made with the Scalekit SDK against the configured environment.

The client is built on first use (its constructor logs in over the network) and shared.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from scim_readiness.devstack.sampleapp.settings import AppSettings


class PortalUnavailable(Exception):
    """The link cannot be made; the message says why (never contains a secret)."""


class PortalLinks:
    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        s = self.settings
        return bool(s.scalekit_env_url and s.scalekit_client_id and s.scalekit_client_secret)

    def _connect(self) -> Any:
        with self._lock:
            if self._client is None:
                s = self.settings
                if s.scalekit_ca_path is not None:
                    # requests and grpc read their trust from these (grpc once per process).
                    # Trust the process already set up (the demo, a test session) wins: the
                    # app shares the process and must not swap it under the checker.
                    for name in ("REQUESTS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"):
                        os.environ.setdefault(name, str(s.scalekit_ca_path))
                from scalekit import ScalekitClient

                self._client = ScalekitClient(
                    s.scalekit_env_url, s.scalekit_client_id, s.scalekit_client_secret
                )
            return self._client

    def generate(self, organization_id: str) -> dict[str, Any]:
        """{"location", "organization_id", "expire_time"} for a fresh link (blocking)."""
        if not self.configured:
            raise PortalUnavailable(
                "the app has no Scalekit environment configured (environment URL, client id "
                "and client secret are needed to generate admin portal links)"
            )
        try:
            client = self._connect()
            from scalekit.v1.organizations.organizations_pb2 import Feature

            link = client.organization.generate_portal_link(
                organization_id, features=[Feature.dir_sync]
            )
        except Exception as exc:
            # The SDK's messages name the failing call, not the credentials.
            raise PortalUnavailable(
                f"Scalekit refused or failed to make a portal link: {type(exc).__name__}"
            ) from exc
        expire = link.expire_time.ToDatetime().replace(microsecond=0)
        return {
            "location": link.location,
            "organization_id": organization_id,
            "expire_time": expire.isoformat() + "Z",
        }

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        channel = getattr(getattr(client, "core_client", None), "grpc_secure_channel", None)
        if channel is not None:
            channel.close()
