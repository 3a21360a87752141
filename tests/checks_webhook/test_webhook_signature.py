"""`webhook-signature` against the reference app over HTTPS on loopback, clean and flawed."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from scim_readiness.checks import webhook_signature

from scim_readiness.config import Config
from scim_readiness.devstack.sampleapp import RunningApp
from scim_readiness.devstack.tls_ca import LocalCA, ServerCert
from scim_readiness.engine.registry import CheckSpec
from scim_readiness.engine.runner import RunOptions, run_suite
from scim_readiness.model import Status

from .conftest import (
    ORG_ID,
    MakeContext,
    assert_nothing_left,
    finding,
    probe_section,
    run_check,
    titles,
)
from .receiver import serve

Answer = tuple[int, dict[str, str], bytes]

StartApp = Callable[..., RunningApp]

FORGED = (
    "no signature headers",
    "a signature made with the wrong secret",
    "a body changed after signing",
    "a timestamp 6 minutes old",
    "a timestamp 6 minutes in the future",
    "a signature without the v1, prefix",
    "a signature that is not base64",
)


def test_clean_app_passes_with_every_delivery_observed(
    make_context: MakeContext, start_app: StartApp, webhook_secret: str
) -> None:
    app = start_app()
    ctx = make_context(webhook_signature, url=app.webhook_url)
    assert run_check(webhook_signature, ctx, app) is Status.PASS, titles(ctx)
    rejected = finding(ctx, "forged or malformed deliveries rejected with 4xx")
    assert rejected.title.startswith("All 7 ")
    for name in FORGED:
        assert f"{name}: HTTP 401" in rejected.observed
    assert "rotation" in finding(ctx, "Valid variants accepted").title
    assert "indented JSON" in finding(ctx, "Valid variants accepted").title
    # The reference app verifies with the SDK, which reads only webhook-*: that is fine.
    families = finding(ctx, "Honours the webhook-* headers (svix-* alone is not accepted)")
    assert families.status is Status.PASS and "svix-* only: HTTP 401" in families.observed
    assert ctx.findings.metrics["header_families_honoured"] == ["webhook-*"]
    assert finding(ctx, "No trace of the 7 rejected deliveries").status is Status.PASS
    replay = finding(ctx, "Replay of an already-delivered webhook-id answered 2xx")
    assert '"status":"duplicate"' in replay.observed  # the app's own words, quoted
    assert finding(ctx, "Replay had no visible second effect").status is Status.PASS
    assert webhook_secret not in repr(ctx.findings.items)
    # Every test user was recorded before it was sent and removed by cleanup.
    assert_nothing_left(ctx, app)


@pytest.mark.parametrize("flaw", ["no-signature-check", "skip-verify-when-secret-missing"])
def test_app_that_does_not_verify_fails_on_every_forgery(
    make_context: MakeContext, start_app: StartApp, flaw: str
) -> None:
    app = start_app(flaw, app_secret=None if flaw.startswith("skip") else "default")
    ctx = make_context(webhook_signature, url=app.webhook_url)
    assert run_check(webhook_signature, ctx, app) is Status.FAIL
    failed = titles(ctx, Status.FAIL)
    for name in FORGED:
        assert f"Accepted a delivery with {name}" in failed
    trace = finding(ctx, "refused or forged deliveries left a trace in the app")
    assert trace.title.startswith("7 ")
    assert "zz-scim-readiness+" in trace.observed  # the distinctive test users, named
    # Even the users the forgeries created are gone after cleanup.
    assert_nothing_left(ctx, app)


def test_reserialising_app_fails_on_reformatted_json(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app("verify-reserialized-body")
    ctx = make_context(webhook_signature, url=app.webhook_url)
    assert run_check(webhook_signature, ctx, app) is Status.FAIL
    assert titles(ctx, Status.FAIL) == [
        "Valid signature over re-formatted JSON rejected (the app verifies re-serialised "
        "JSON, not the raw body)"
    ]
    assert "HTTP 401" in finding(ctx, "re-formatted JSON").observed


def test_app_without_timestamp_tolerance_fails_on_stale_and_future(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app("accept-stale-timestamp")
    ctx = make_context(webhook_signature, url=app.webhook_url)
    assert run_check(webhook_signature, ctx, app) is Status.FAIL
    assert titles(ctx, Status.FAIL) == [
        "Accepted a delivery with a timestamp 6 minutes old",
        "Accepted a delivery with a timestamp 6 minutes in the future",
        "2 refused or forged deliveries left a trace in the app",
    ]


def test_svix_only_app_fails_for_ignoring_webhook_headers(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app("svix-headers-only")
    ctx = make_context(webhook_signature, url=app.webhook_url)
    assert run_check(webhook_signature, ctx, app) is Status.FAIL
    assert titles(ctx, Status.FAIL) == [
        "Valid webhook-* signature ignored: the app honours only svix-* headers"
    ]
    f = finding(ctx, "honours only svix-*")
    assert "webhook-* only: HTTP 401" in f.observed and "svix-* only: HTTP 200" in f.observed
    assert ctx.findings.metrics["header_families_honoured"] == ["svix-*"]


@pytest.mark.parametrize(
    "flaw",
    [
        "slow-ack",
        "create-not-idempotent",
        "merge-on-email",
        "crash-on-unknown-event",
        "crash-on-invalid-json",
    ],
)
def test_other_checks_flaws_do_not_change_this_verdict(
    make_context: MakeContext, start_app: StartApp, flaw: str
) -> None:
    app = start_app(flaw, slow_ack_s=0.05)
    ctx = make_context(webhook_signature, url=app.webhook_url)
    assert run_check(webhook_signature, ctx, app) is Status.PASS, titles(ctx, Status.FAIL)


def test_without_a_probe_traces_are_skipped_not_passed(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app("no-signature-check")
    ctx = make_context(webhook_signature, url=app.webhook_url)
    assert run_check(webhook_signature, ctx) is Status.FAIL  # the status codes alone suffice
    assert finding(ctx, "Traces of rejected deliveries not checked").status is Status.SKIP
    assert "no probe is configured" in finding(ctx, "Traces of rejected").observed
    assert finding(ctx, "Replay effect not checked").status is Status.SKIP
    clean = start_app()
    ctx = make_context(webhook_signature, url=clean.webhook_url)
    assert run_check(webhook_signature, ctx) is Status.PASS
    assert not [t for t in titles(ctx, Status.PASS) if "trace" in t.lower()]


def test_read_only_sends_only_harmless_events(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app("no-signature-check")
    ctx = make_context(webhook_signature, url=app.webhook_url, read_only=True)
    assert run_check(webhook_signature, ctx, app) is Status.FAIL
    assert "Accepted a delivery with no signature headers" in titles(ctx, Status.FAIL)
    assert app.store.count_users() == 0
    assert list(ctx.ledger.entries()) == []


def test_no_secret_is_skip_with_reason(make_context: MakeContext, start_app: StartApp) -> None:
    app = start_app()
    ctx = make_context(webhook_signature, url=app.webhook_url, secret=None)
    assert run_check(webhook_signature, ctx, app) is Status.SKIP
    assert "no webhook secret configured" in titles(ctx)[0]


def test_wrong_configured_secret_fails_on_the_control(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app(app_secret="whsec_" + "QUJD" * 8)
    ctx = make_context(webhook_signature, url=app.webhook_url)
    assert run_check(webhook_signature, ctx, app) is Status.FAIL
    assert titles(ctx, Status.FAIL) == ["Correctly signed delivery refused"]
    assert "HTTP 401" in finding(ctx, "Correctly signed delivery refused").observed


def test_crash_on_malformed_signature_header_is_a_hardening_warning(
    make_context: MakeContext, loopback_cert: ServerCert, webhook_secret: str
) -> None:
    """A common real defect: the Standard Webhooks library raises ValueError/binascii.Error
    (not its verification error) on a malformed header, and an app that only catches the
    latter answers 500. The delivery is still not accepted, and Scalekit never sends such a
    header: WARN (hardening), not a readiness FAIL (README, "Severity policy")."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    def parse_signatures(header: str) -> None:
        # The defect as releases of the library had it, raising while taking each entry
        # apart; later releases refuse cleanly, so the test does not lean on the installed one.
        for entry in header.split(" "):
            _version, signature = entry.split(",")  # ValueError without the "v1," prefix
            base64.b64decode(signature, validate=True)  # binascii.Error when not base64

    def naive(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        try:
            if "webhook-signature" in headers:
                parse_signatures(headers["webhook-signature"])
            Webhook(webhook_secret).verify(body, dict(headers))
        except WebhookVerificationError:
            return 401, {}, b'{"error":"invalid signature"}'
        except Exception:
            return 500, {"content-type": "text/plain"}, b"Internal Server Error"
        return 200, {}, b'{"ok":true}'

    with serve(naive, tls=loopback_cert.server_context()) as app:
        ctx = make_context(webhook_signature, url=app.url)
        assert run_check(webhook_signature, ctx) is Status.WARN
    assert titles(ctx, Status.WARN) == [
        "Delivery with a signature without the v1, prefix answered with HTTP 500, not 4xx "
        "(hardening)",
        "Delivery with a signature that is not base64 answered with HTTP 500, not 4xx (hardening)",
    ]
    assert "Internal Server Error" in finding(ctx, "without the v1, prefix").observed


def test_probe_with_email_lookup_only_still_finds_traces(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app("accept-stale-timestamp")
    ctx = make_context(
        webhook_signature,
        url=app.webhook_url,
        probe_config=probe_section(app, "user_by_email"),
    )
    assert run_check(webhook_signature, ctx) is Status.FAIL
    assert "2 refused or forged deliveries left a trace in the app" in titles(ctx, Status.FAIL)
    assert finding(ctx, "Replay had no visible second effect").status is Status.PASS


@pytest.mark.parametrize("flaw", [None, "no-signature-check"])
def test_read_only_runs_through_the_runner_prove_enforcement_and_change_nothing(
    flaw: str | None, start_app: StartApp, ca: LocalCA, webhook_secret: str, tmp_path: Path
) -> None:
    """The runner, not the check, decides: under --read-only webhook-signature runs its
    reduced mode (forged deliveries still judged), the data-changing checks are SKIP."""
    import asyncio

    from scim_readiness.checks import bad_data, user_lifecycle

    app = start_app(*([flaw] if flaw else []))
    config = Config.model_validate(
        {
            "probe": probe_section(app).model_dump(),
            "scalekit": {"expect": "development", "organization_id": ORG_ID},
            "webhook": {"url": app.webhook_url, "secret": webhook_secret},
            "ledger_path": str(tmp_path / "ledger.jsonl"),
        }
    )
    specs = [CheckSpec.from_module(m) for m in (webhook_signature, bad_data, user_lifecycle)]
    options = RunOptions(read_only=True, ca_bundle=str(ca.ca_path))
    report = asyncio.run(run_suite(config, options, specs=specs))
    checks = {c.id: c for c in report.checks}
    assert checks["bad-data"].status is Status.SKIP
    assert checks["user-lifecycle"].status is Status.SKIP
    assert checks["bad-data"].headline == "read-only run: this check creates and removes test data"
    signature = checks["webhook-signature"]
    titles_seen = [f.title for f in signature.findings]
    if flaw is None:
        assert signature.status is Status.PASS, titles_seen
        assert any(t.startswith("All 7 ") for t in titles_seen)
    else:
        assert signature.status is Status.FAIL
        assert "Accepted a delivery with no signature headers" in titles_seen
    assert app.store.count_users() == 0


def test_a_genuine_event_answered_500_is_not_blamed_on_the_secret(
    make_context: MakeContext, loopback_cert: ServerCert
) -> None:
    def crashing(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        return 500, {"content-type": "text/plain"}, b"Internal Server Error"

    with serve(crashing, tls=loopback_cert.server_context()) as app:
        ctx = make_context(webhook_signature, url=app.url)
        assert run_check(webhook_signature, ctx) is Status.FAIL
    control = finding(ctx, "Correctly signed delivery")
    assert control.title == "Correctly signed delivery answered with HTTP 500 (the app failed)"
    assert "webhook.secret" not in control.fix and "logs" in control.fix
    assert "Correctly signed delivery refused" not in titles(ctx)
