"""`bad-data` against the reference app over HTTPS on loopback, clean and flawed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from scim_readiness.checks import bad_data

from scim_readiness.devstack.sampleapp import RunningApp
from scim_readiness.model import Status
from scim_readiness.plugin.context import CheckContext

from .conftest import MakeContext, assert_nothing_left, finding, probe_section, run_check, titles

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
