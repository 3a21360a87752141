"""`webhook-endpoint` against real HTTPS receivers on 127.0.0.1 with chosen certificates,
TLS versions and answers."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from scim_readiness.checks import webhook_endpoint
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from scim_readiness.devstack.sampleapp import AppSettings, RunningApp, serve_app
from scim_readiness.devstack.tls_ca import LocalCA, ServerCert
from scim_readiness.model import Status, fold_status
from scim_readiness.plugin.context import CheckContext

from .conftest import ORG_ID, MakeContext, assert_coded, finding
from .receiver import Received, serve

StartApp = Callable[..., RunningApp]


def run(ctx: CheckContext) -> Status:
    asyncio.run(webhook_endpoint.run(ctx))
    assert_coded(webhook_endpoint, ctx.findings.items)
    return fold_status(f.status for f in ctx.findings.items)


def verifying(secret: str):  # type: ignore[no-untyped-def]
    """A responder that verifies Standard Webhooks signatures, as a correct app does."""

    def respond(
        method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            Webhook(secret).verify(body, dict(headers))
        except WebhookVerificationError as exc:
            return 401, {"content-type": "application/json"}, f'{{"error":"{exc}"}}'.encode()
        return 204, {}, b""

    return respond


def test_clean_loopback_endpoint_passes_and_says_it_is_local(
    make_context: MakeContext, loopback_cert: ServerCert, webhook_secret: str
) -> None:
    with serve(verifying(webhook_secret), tls=loopback_cert.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url, options={"deliveries": 3})
        assert run(ctx) is Status.PASS
    local = finding(ctx, "local (loopback) target, accepted because expect is development")
    assert local.status is Status.PASS
    assert finding(ctx, "TLS 1.0/1.1 refused").status is Status.PASS
    assert finding(ctx, "Plain-HTTP twin").status is Status.PASS
    ack = finding(ctx, "acknowledged within the latency budget")
    assert "over 3 deliveries" in ack.observed and "HTTP 204" in ack.observed
    assert {"ack_p50_ms", "ack_p95_ms", "certificate_days_left"} <= set(ctx.findings.metrics)
    # Three deliveries, each signed with both header families, for the configured org.
    posts = [r for r in app.received if r.method == "POST"]
    assert len(posts) == 3
    assert len({r.headers["webhook-id"] for r in posts}) == 3
    assert all(r.headers["svix-signature"] == r.headers["webhook-signature"] for r in posts)
    assert all(f'"organization_id":"{ORG_ID}"'.encode() in r.body for r in posts)
    assert all(b'"type":"organization.directory_enabled"' in r.body for r in posts)
    assert webhook_secret not in repr(ctx.findings.items)


def test_loopback_in_production_fails(make_context: MakeContext, loopback_cert: ServerCert) -> None:
    with serve(tls=loopback_cert.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url, expect="production")
        assert run(ctx) is Status.FAIL
    f = finding(ctx, "non-public addresses in production")
    assert f.status is Status.FAIL and "127.0.0.1 (loopback)" in f.observed


def test_plain_http_url_in_production_fails(make_context: MakeContext) -> None:
    with serve() as app:
        ctx = make_context(webhook_endpoint, url=app.url, expect="production")
        assert run(ctx) is Status.FAIL
    assert finding(ctx, "Webhook URL is plain HTTP in production").status is Status.FAIL
    assert finding(ctx, "TLS certificate not checked").status is Status.SKIP
    # Nothing signed crossed the wire in clear text.
    assert finding(ctx, "Signed event not sent over plain HTTP").status is Status.SKIP
    assert not app.received


def test_plain_http_url_outside_production_is_a_warning(make_context: MakeContext) -> None:
    with serve() as app:
        ctx = make_context(webhook_endpoint, url=app.url, expect="staging")
        assert run(ctx) is Status.WARN
    assert "accepted only because expect is staging" in finding(ctx, "plain HTTP").title


def test_certificate_for_another_host_fails(make_context: MakeContext, ca: LocalCA) -> None:
    other = ca.issue("other.example")
    with serve(tls=other.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url)
        assert run(ctx) is Status.FAIL
    f = finding(ctx, "TLS certificate does not match the webhook host")
    assert "other.example" in f.observed  # the report says what the certificate is for
    # Nothing was delivered over a connection that failed verification.
    assert not [t for t in ctx.findings.items if "acknowledged" in t.title]


def test_certificate_from_an_untrusted_ca_fails(
    make_context: MakeContext, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stranger = LocalCA(tmp_path_factory.mktemp("other-ca")).issue("127.0.0.1")
    with serve(tls=stranger.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url)
        assert run(ctx) is Status.FAIL
    assert "certificate verify failed" in finding(ctx, "does not verify").observed or (
        "unable to get local issuer" in finding(ctx, "does not verify").observed
    )


def test_certificate_expiring_in_three_days_fails(make_context: MakeContext, ca: LocalCA) -> None:
    short = ca.issue("127.0.0.1", valid_for=dt.timedelta(days=3))
    with serve(tls=short.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url)
        assert run(ctx) is Status.FAIL
    f = finding(ctx, "TLS certificate expires in")
    assert f.status is Status.FAIL and f.title.startswith("TLS certificate expires in 3.0 days")


def test_certificate_expiring_within_warning_window_warns(
    make_context: MakeContext, ca: LocalCA
) -> None:
    soon = ca.issue("127.0.0.1", valid_for=dt.timedelta(days=15))
    with serve(tls=soon.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url)
        assert run(ctx) is Status.WARN
        assert finding(ctx, "TLS certificate expires in 15 days").status is Status.WARN
        # The threshold is an option.
        ctx2 = make_context(webhook_endpoint, url=app.url, options={"cert_warn_days": 10})
        assert run(ctx2) is Status.PASS


def test_endpoint_accepting_tls_1_1_fails(
    make_context: MakeContext, loopback_cert: ServerCert
) -> None:
    from scim_readiness.checks.webhook_endpoint.tls_inspect import legacy_client_context

    if legacy_client_context() is None:
        pytest.skip("this OpenSSL cannot offer TLS 1.1")
    legacy = loopback_cert.server_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy.minimum_version = ssl.TLSVersion.TLSv1
    legacy.set_ciphers("DEFAULT:@SECLEVEL=0")
    with serve(tls=legacy) as app:
        ctx = make_context(webhook_endpoint, url=app.url)
        assert run(ctx) is Status.FAIL
    assert finding(ctx, "Endpoint accepts TLSv1").status is Status.FAIL


def test_plain_http_twin_that_acknowledges_fails(
    make_context: MakeContext, loopback_cert: ServerCert
) -> None:
    with serve(tls=loopback_cert.server_context()) as app, serve() as twin:
        ctx = make_context(webhook_endpoint, url=app.url, options={"http_port": twin.port})
        assert run(ctx) is Status.FAIL
    f = finding(ctx, "Plain-HTTP twin acknowledges events")
    assert f"http://127.0.0.1:{twin.port}/webhooks/scalekit" in f.observed
    # The twin never saw a signature: nothing signed goes over plain HTTP.
    assert twin.received and not any("webhook-signature" in r.headers for r in twin.received)


def test_plain_http_twin_redirecting_to_https_passes(
    make_context: MakeContext, loopback_cert: ServerCert
) -> None:
    def redirect(method: str, path: str, headers: Mapping[str, str], body: bytes):  # type: ignore[no-untyped-def]
        return 308, {"location": "https://127.0.0.1/webhooks/scalekit"}, b""

    with serve(tls=loopback_cert.server_context()) as app, serve(redirect) as twin:
        ctx = make_context(webhook_endpoint, url=app.url, options={"http_port": twin.port})
        assert run(ctx) is Status.PASS
    assert finding(ctx, "redirects to HTTPS").status is Status.PASS


def test_a_redirect_on_the_webhook_url_fails_with_its_target(
    make_context: MakeContext, loopback_cert: ServerCert
) -> None:
    """Webhook senders do not follow redirects: a URL that only redirects never accepts a
    delivery, so it is a FAIL (it was a WARN, and a run could end READY with nothing ever
    delivered)."""

    def redirect(method: str, path: str, headers: Mapping[str, str], body: bytes):  # type: ignore[no-untyped-def]
        return 301, {"location": "https://127.0.0.1/new-webhooks"}, b"moved"

    with serve(redirect, tls=loopback_cert.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url)
        assert run(ctx) is Status.FAIL
    f = finding(ctx, "Webhook URL answers deliveries with a redirect")
    assert "HTTP 301" in f.observed and "https://127.0.0.1/new-webhooks" in f.observed
    assert "https://127.0.0.1/new-webhooks" in f.fix


@pytest.mark.parametrize("target", ["http://127.0.0.1:9/plain?token=s3cr3t-t0ken-value", "self"])
def test_a_redirect_loop_or_to_plain_http_fails_and_hides_tokens(
    make_context: MakeContext, loopback_cert: ServerCert, target: str
) -> None:
    def redirect(method: str, path: str, headers: Mapping[str, str], body: bytes):  # type: ignore[no-untyped-def]
        return 302, {"location": path if target == "self" else target}, b""

    with serve(redirect, tls=loopback_cert.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url)
        assert run(ctx) is Status.FAIL
    f = finding(ctx, "Webhook URL answers deliveries with a redirect")
    assert "HTTP 302" in f.observed
    assert "s3cr3t-t0ken-value" not in f.observed + f.fix


def test_slow_acknowledgement_fails(
    make_context: MakeContext, loopback_cert: ServerCert, webhook_secret: str
) -> None:
    with serve(verifying(webhook_secret), tls=loopback_cert.server_context(), delay_s=0.3) as app:
        ctx = make_context(
            webhook_endpoint, url=app.url, latency_budget_s=0.1, options={"deliveries": 2}
        )
        assert run(ctx) is Status.FAIL
    f = finding(ctx, "slower than the latency budget")
    assert "over 2 deliveries" in f.observed and "within 0.1 s" in f.expected
    assert ctx.findings.metrics["ack_p95_ms"] >= 300


def test_rejected_event_fails_and_quotes_the_answer(
    make_context: MakeContext, loopback_cert: ServerCert, webhook_secret: str
) -> None:
    wrong = "whsec_" + "A" * 32
    with serve(verifying(wrong), tls=loopback_cert.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url)
        assert run(ctx) is Status.FAIL
    f = finding(ctx, "not acknowledged with 2xx")
    assert "HTTP 401" in f.observed and "No matching signature found" in f.observed


def test_answer_body_is_redacted(
    make_context: MakeContext, loopback_cert: ServerCert, webhook_secret: str
) -> None:
    def leaky(method: str, path: str, headers: Mapping[str, str], body: bytes):  # type: ignore[no-untyped-def]
        text = f"expected secret {webhook_secret}, got {headers.get('webhook-signature')}"
        return 500, {}, text.encode()

    with serve(leaky, tls=loopback_cert.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url, options={"deliveries": 1})
        assert run(ctx) is Status.FAIL
    text = repr(ctx.findings.items)
    assert "HTTP 500" in text and "<redacted>" in text
    assert webhook_secret not in text and webhook_secret[6:] not in text
    assert "v1," not in finding(ctx, "not acknowledged").observed


def test_no_secret_is_an_error_never_a_pass(
    make_context: MakeContext, loopback_cert: ServerCert
) -> None:
    with serve(tls=loopback_cert.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url, secret=None)
        assert run(ctx) is Status.ERROR
        assert not app.received
    assert "no webhook secret configured" in finding(ctx, "Could not send").title


def test_host_outside_allow_list_fails(
    make_context: MakeContext, loopback_cert: ServerCert
) -> None:
    with serve(tls=loopback_cert.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url, allowed_hosts=["hooks.example.com"])
        assert run(ctx) is Status.FAIL
        ok_ctx = make_context(webhook_endpoint, url=app.url, allowed_hosts=["127.0.0.1"])
        assert run(ok_ctx) is Status.PASS
    assert finding(ctx, "not on the allow-list").observed == "127.0.0.1"


def test_unreachable_endpoint_fails_without_hanging(make_context: MakeContext) -> None:
    with serve() as gone:
        url = gone.url.replace("http://", "https://")
    ctx = make_context(webhook_endpoint, url=url)
    assert run(ctx) is Status.FAIL
    assert finding(ctx, "does not answer TLS").status is Status.FAIL


def test_missing_organisation_is_flagged(
    make_context: MakeContext, loopback_cert: ServerCert, webhook_secret: str
) -> None:
    with serve(verifying(webhook_secret), tls=loopback_cert.server_context()) as app:
        ctx = make_context(webhook_endpoint, url=app.url, organization_id=None)
        assert run(ctx) is Status.WARN
        received: list[Received] = app.received
    warning = finding(ctx, "placeholder organisation")
    assert (warning.status, warning.code) == (Status.WARN, "WHE009")
    assert b"org_scimreadinessnotconfigured" in received[-1].body


def test_no_url_is_skip(make_context: MakeContext) -> None:
    ctx = make_context(webhook_endpoint, url="")
    assert run(ctx) is Status.SKIP


# ---------------------------------------------------------------------------- reference app

ALL_APP_FLAWS_BUT_SLOW_ACK = (
    "no-signature-check",
    "verify-reserialized-body",
    "accept-stale-timestamp",
    "svix-headers-only",
    "create-not-idempotent",
    "merge-on-email",
    "crash-on-unknown-event",
    "crash-on-invalid-json",
    "probe-404",
)


def test_reference_app_passes(make_context: MakeContext, start_app: StartApp) -> None:
    app = start_app()
    ctx = make_context(webhook_endpoint, url=app.webhook_url)
    assert run(ctx) is Status.PASS
    ack = finding(ctx, "acknowledged within the latency budget")
    assert '"status":"directory_saved"' in ack.observed  # the app's answer, quoted


def test_reference_app_slow_ack_fails(make_context: MakeContext, start_app: StartApp) -> None:
    app = start_app("slow-ack", slow_ack_s=0.3)
    ctx = make_context(
        webhook_endpoint, url=app.webhook_url, latency_budget_s=0.2, options={"deliveries": 2}
    )
    assert run(ctx) is Status.FAIL
    assert [f.title for f in ctx.findings.items if f.status is Status.FAIL] == [
        "Webhook acknowledged slower than the latency budget"
    ]


@pytest.mark.parametrize("flaw", ALL_APP_FLAWS_BUT_SLOW_ACK)
def test_other_flaws_do_not_change_this_verdict(
    make_context: MakeContext, start_app: StartApp, flaw: str
) -> None:
    app = start_app(flaw)
    ctx = make_context(webhook_endpoint, url=app.webhook_url, options={"deliveries": 1})
    assert run(ctx) is Status.PASS


def test_app_started_without_secret_that_skips_verification_still_acknowledges(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app("skip-verify-when-secret-missing", app_secret=None)
    ctx = make_context(webhook_endpoint, url=app.webhook_url, options={"deliveries": 1})
    assert run(ctx) is Status.PASS


def test_reference_app_http_redirect_twin_passes(
    make_context: MakeContext, loopback_cert: ServerCert, webhook_secret: str, tmp_path: Path
) -> None:
    settings = AppSettings(
        webhook_secret=webhook_secret,
        tenant_by_org={ORG_ID: "tenant-acme"},
        db_path=tmp_path / "app.sqlite3",
    )
    with serve_app(settings, loopback_cert, http_redirect=True) as app:
        assert app.http_url is not None
        twin_port = int(app.http_url.rsplit(":", 1)[1])
        ctx = make_context(webhook_endpoint, url=app.webhook_url, options={"http_port": twin_port})
        assert run(ctx) is Status.PASS
    assert finding(ctx, "redirects to HTTPS").status is Status.PASS
