"""Scalekit directory events: realistic envelopes and Standard Webhooks signatures.

Everything here is pure and cheap to import (no SDK, no web framework), so the checks, the
emulator, the reference app and ``events send`` all build and sign events the same way.

The shapes follow Scalekit's documented events: an envelope (``spec_version``, ``id``,
``type``, ``occurred_at``, ``environment_id``, ``organization_id``, ``object``, ``data``) whose
``data`` keys are ordered alphabetically and whose empty optional fields are left out, as the
service's own payloads are.
"""

from __future__ import annotations

from scim_readiness.events.envelope import (
    EventType,
    build_event,
    directory_data,
    encode_body,
    group_data,
    group_deleted_data,
    new_event_id,
    user_data,
    user_deleted_data,
)
from scim_readiness.events.signing import (
    HEADER_FAMILIES,
    SIGNATURE_HEADERS,
    redact_headers,
    sign,
    signed_headers,
)

__all__ = [
    "HEADER_FAMILIES",
    "SIGNATURE_HEADERS",
    "EventType",
    "build_event",
    "directory_data",
    "encode_body",
    "group_data",
    "group_deleted_data",
    "new_event_id",
    "redact_headers",
    "sign",
    "signed_headers",
    "user_data",
    "user_deleted_data",
]
