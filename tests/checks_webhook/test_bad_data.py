"""`bad-data` against the reference app over HTTPS on loopback, clean and flawed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping

import pytest
from scim_readiness.checks import bad_data

from scim_readiness.devstack.sampleapp import RunningApp
from scim_readiness.devstack.tls_ca import LocalCA, ServerCert
from scim_readiness.model import Finding, Status
from scim_readiness.plugin.context import CheckContext

from .conftest import MakeContext, assert_nothing_left, finding, probe_section, run_check, titles
from .receiver import Responder, serve

Answer = tuple[int, dict[str, str], bytes]

StartApp = Callable[..., RunningApp]

#: Defects of the reference app itself that this check (rightly) reports on the clean app
#: (none now: it used to answer 500 on deeply nested JSON).
REFERENCE_APP_DEFECTS: set[str] = set()


def verdict_failures(ctx: CheckContext) -> list[str]:
    """FAIL titles, less the reference app's own known defects."""
    return [t for t in titles(ctx, Status.FAIL) if t not in REFERENCE_APP_DEFECTS]


def test_clean_app_passes_and_findings_quote_its_answers(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app()
    ctx = make_context(bad_data, url=app.webhook_url, health_url=app.health_url)
    run_check(bad_data, ctx, app)
    assert verdict_failures(ctx) == []
    assert not titles(ctx, Status.WARN) and not titles(ctx, Status.ERROR)
    passed = titles(ctx, Status.PASS)
    assert "The same event delivered twice: one user in the app" in passed
    assert "Two user_created events for the same directory user: one user in the app" in passed
    assert "Second directory user with an existing email refused" in passed
    assert "First user kept its identity after the email conflict" in passed
    assert "Case variant of an existing email refused as the same address" in passed
    assert "Unknown event type acknowledged with 2xx" in passed
    assert "No record left by the invalid deliveries" in passed
    assert "App still healthy after the invalid deliveries" in passed
    # The app's actionable errors are quoted.
    conflict = finding(ctx, "existing email refused")
    assert "HTTP 409" in conflict.observed and "email_conflict" in conflict.observed
    assert "data.email" in finding(ctx, "A user without email refused").observed
    assert "data.active must be boolean" in finding(ctx, "Wrong types").observed
    assert "HTTP 413" in finding(ctx, "A 1 MiB body refused").observed
    assert "invalid_json" in finding(ctx, "Invalid JSON refused").observed
    assert "HTTP 400" in finding(ctx, "JSON nested 20,000 levels deep refused").observed
    assert "not UTF-8" in finding(ctx, "Non-UTF-8 bytes refused").observed
    assert_nothing_left(ctx, app)


def test_non_idempotent_create_fails_with_duplicate_users(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app("create-not-idempotent")
    ctx = make_context(bad_data, url=app.webhook_url)
    assert run_check(bad_data, ctx, app) is Status.FAIL
    assert verdict_failures(ctx) == [
        "The same event delivered twice: 2 users in the app",
        "Two user_created events for the same directory user: 2 users in the app",
    ]


def test_merge_on_email_fails_as_account_takeover(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app("merge-on-email")
    ctx = make_context(bad_data, url=app.webhook_url)
    assert run_check(bad_data, ctx, app) is Status.FAIL
    assert verdict_failures(ctx) == [
        "Second directory user with the same email took over the first user's record"
    ]
    f = finding(ctx, "took over")
    assert "bad-email-claimant" in f.observed and "HTTP 200" in f.observed
    assert_nothing_left(ctx, app)


def test_case_sensitive_email_fails_with_a_second_account(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app("case-sensitive-email")
    ctx = make_context(bad_data, url=app.webhook_url)
    assert run_check(bad_data, ctx, app) is Status.FAIL
    assert verdict_failures(ctx) == ["A case variant of an existing email became a second account"]
    f = finding(ctx, "became a second account")
    assert "2 record(s) for the address" in f.observed and "bad-case-claimant" in f.observed
    assert_nothing_left(ctx, app)


def test_crash_on_unknown_event_fails(make_context: MakeContext, start_app: StartApp) -> None:
    app = start_app("crash-on-unknown-event")
    ctx = make_context(bad_data, url=app.webhook_url)
    assert run_check(bad_data, ctx, app) is Status.FAIL
    assert verdict_failures(ctx) == ["An unknown event type answered with HTTP 500"]
    assert "Internal Server Error" in finding(ctx, "unknown event type").observed


def test_crash_on_invalid_json_fails(make_context: MakeContext, start_app: StartApp) -> None:
    app = start_app("crash-on-invalid-json")
    ctx = make_context(bad_data, url=app.webhook_url)
    assert run_check(bad_data, ctx, app) is Status.FAIL
    assert verdict_failures(ctx) == ["Invalid JSON answered with HTTP 500"]


@pytest.mark.parametrize(
    "flaw",
    [
        "slow-ack",
        "no-signature-check",
        "verify-reserialized-body",
        "accept-stale-timestamp",
        "svix-headers-only",
        "ascii-only-names",
    ],
)
def test_other_checks_flaws_do_not_change_this_verdict(
    make_context: MakeContext, start_app: StartApp, flaw: str
) -> None:
    app = start_app(flaw, slow_ack_s=0.05)
    ctx = make_context(bad_data, url=app.webhook_url)
    run_check(bad_data, ctx, app)
    assert verdict_failures(ctx) == []


def test_without_a_probe_records_are_skipped_not_passed(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app("create-not-idempotent")
    ctx = make_context(bad_data, url=app.webhook_url)
    run_check(bad_data, ctx)
    assert verdict_failures(ctx) == []  # status codes alone cannot see duplicates
    assert finding(ctx, "Records in the app not checked").status is Status.SKIP
    assert not [t for t in titles(ctx) if "one user in the app" in t]


def test_missing_secret_skips_and_read_only_is_left_to_the_runner(
    make_context: MakeContext, start_app: StartApp
) -> None:
    from scim_readiness.api import ReadOnly

    app = start_app()
    # Every delivery carries a test user: the runner SKIPs it in a read-only run (see
    # test_webhook_signature's run through the runner); the check has no copy of that test.
    assert bad_data.CHECK.read_only is ReadOnly.NONE
    ctx = make_context(bad_data, url=app.webhook_url, secret=None)
    assert run_check(bad_data, ctx, app) is Status.SKIP
    assert "no webhook.secret configured" in titles(ctx)[0]
    assert app.store.count_users() == 0


def test_checks_of_one_run_never_reuse_a_webhook_id(
    make_context: MakeContext, start_app: StartApp
) -> None:
    """All checks of a run share its run id; the app deduplicates webhook-ids, so an id
    reused by a later check would be acknowledged as a duplicate and silently not applied."""
    from scim_readiness.checks import webhook_endpoint, webhook_signature

    app = start_app()
    first = make_context(webhook_signature, url=app.webhook_url)
    run_check(webhook_signature, first, app)
    endpoint = make_context(webhook_endpoint, url=app.webhook_url, run_id=first.run_id)
    run_check(webhook_endpoint, endpoint, app)
    ctx = make_context(bad_data, url=app.webhook_url, run_id=first.run_id)
    run_check(bad_data, ctx, app)
    assert "The same event delivered twice: one user in the app" in titles(ctx, Status.PASS)
    assert verdict_failures(ctx) == []


def test_probe_without_list_or_id_lookups_still_catches_a_takeover(
    make_context: MakeContext, start_app: StartApp
) -> None:
    app = start_app("merge-on-email")
    ctx = make_context(
        bad_data, url=app.webhook_url, probe_config=probe_section(app, "user_by_email")
    )
    assert run_check(bad_data, ctx) is Status.FAIL
    assert verdict_failures(ctx) == [
        "Second directory user with the same email took over the first user's record"
    ]
    # Duplicates need the full list: said so, not passed.
    skipped = finding(ctx, "The same event delivered twice: records not counted")
    assert skipped.status is Status.SKIP and "list_users" in skipped.observed


@contextlib.contextmanager
def _acknowledging_front(app: RunningApp, ca: LocalCA) -> Iterator[Responder]:
    """Answers every delivery 202 at once, as Scalekit advises (queue, then process), and
    hands it to the reference app behind it, which stores only what is valid."""
    import ssl

    import httpx

    trust = ssl.create_default_context(cafile=str(ca.ca_path))
    with httpx.Client(verify=trust, timeout=10) as client:

        def respond(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
            forwarded = {k: v for k, v in headers.items() if k.startswith(("webhook-", "svix-"))}
            client.post(app.webhook_url, content=body, headers=forwarded)
            return 202, {"content-type": "application/json"}, b'{"queued":true}'

        yield respond


def test_invalid_data_answered_2xx_is_judged_by_its_effect(
    make_context: MakeContext, start_app: StartApp, ca: LocalCA, loopback_cert: ServerCert
) -> None:
    app = start_app()
    with (
        _acknowledging_front(app, ca) as acknowledge,
        serve(acknowledge, tls=loopback_cert.server_context()) as front,
    ):
        ctx = make_context(bad_data, url=front.url)
        status = run_check(bad_data, ctx, app)
    # Nothing invalid was stored and the app stayed healthy: no FAIL for the 202s.
    assert verdict_failures(ctx) == [], titles(ctx)
    assert not [t for t in titles(ctx) if "answered with HTTP 202" in t]
    passed = finding(ctx, "No record left by the invalid deliveries")
    assert passed.status is Status.PASS
    assert "acknowledged with 2xx" in passed.observed and "judged by their effect" in (
        passed.observed
    )
    assert status in (Status.PASS, Status.WARN)  # the 1 MiB body accepted is a WARN


def test_a_crash_on_json_nested_20000_deep_is_hardening_not_a_failure(
    make_context: MakeContext, start_app: StartApp, loopback_cert: ServerCert, ca: LocalCA
) -> None:
    app = start_app()
    with _acknowledging_front(app, ca) as inner:
        deep = _deep_body_answered_500(make_context, app, inner, loopback_cert)
    assert deep.status is Status.WARN
    assert "(hardening)" in deep.title


def _deep_body_answered_500(
    make_context: MakeContext, app: RunningApp, inner: Responder, loopback_cert: ServerCert
) -> Finding:
    def recursion_error(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        if b"[[[[[[[[[[" in body:  # what a correct Flask receiver does: RecursionError → 500
            return 500, {"content-type": "text/plain"}, b"Internal Server Error"
        status, extra, payload = inner(method, path, headers, body)
        return 200, extra, payload

    with serve(recursion_error, tls=loopback_cert.server_context()) as front:
        ctx = make_context(bad_data, url=front.url)
        run_check(bad_data, ctx, app)
    assert verdict_failures(ctx) == [], titles(ctx)
    return finding(ctx, "JSON nested 20,000 levels deep answered with HTTP 500")
