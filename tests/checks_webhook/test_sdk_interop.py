"""The deliveries the webhook checks build are judged by the official SDK's verifier exactly as
the checks expect: the valid variants verify, the forged ones do not."""

from __future__ import annotations

from typing import Any

import pytest
from scim_readiness.checks import webhook_signature
from scim_readiness.checks.webhook_signature import check as signature_body

from scim_readiness.parts import CheckParts

from .conftest import MakeContext


def sdk_verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    from scalekit import ScalekitClient

    # The verifier needs no connection; the constructor would log in.
    verifier: Any = ScalekitClient.__new__(ScalekitClient)
    try:
        return bool(verifier.verify_webhook_payload(secret, headers, body))
    except Exception:  # the SDK raises its own errors (and ValueError/binascii on garbage)
        return False


@pytest.mark.parametrize("case", signature_body._cases(), ids=lambda case: case.key)
def test_sdk_agrees_with_each_delivery_expectation(
    make_context: MakeContext, webhook_secret: str, case: signature_body.Case
) -> None:
    ctx = make_context(webhook_signature, url="https://127.0.0.1:1/webhooks")
    parts = CheckParts(ctx)
    sender = parts.senders.sender(
        "https://127.0.0.1:1/webhooks", webhook_secret, parts.event_target(), 5.0
    )
    identity = ctx.identities.user("interop")
    event = sender.event(
        "organization.directory.user_created",
        {"id": identity.directory_user_id, "email": identity.email},
    )
    body, headers = case.build(sender, event)
    verified = sdk_verifies(webhook_secret, headers, body)
    if case.expect == "accept":
        assert verified
    elif case.expect == "reject":
        assert not verified
    else:  # svix-only: the SDK reads webhook-* headers only
        assert case.key == "svix-only" and not verified
        assert "svix-signature" in headers and "webhook-signature" not in headers


def test_signed_control_verifies_with_the_sdk(
    make_context: MakeContext, webhook_secret: str
) -> None:
    ctx = make_context(webhook_signature, url="https://127.0.0.1:1/webhooks")
    parts = CheckParts(ctx)
    sender = parts.senders.sender(
        "https://127.0.0.1:1/webhooks", webhook_secret, parts.event_target(), 5.0
    )
    event = sender.event("organization.directory_enabled", {"id": "dir_1", "enabled": True})
    body, headers = signature_body._signed(sender, event)
    assert sdk_verifies(webhook_secret, headers, body)
    assert not sdk_verifies("whsec_" + "QUJD" * 8, headers, body)
