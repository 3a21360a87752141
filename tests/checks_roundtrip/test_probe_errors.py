"""A verdict claims only what was observed: a probe that breaks mid-way, or a step whose
starting state was never the one its change should move from, gives ERROR or SKIP "not
judged" for what it could not see, never a FAIL or a PASS."""

from __future__ import annotations

import json
from collections.abc import Callable

from checks_roundtrip.faulty_probe import faulty_probe
from checks_roundtrip.stack import FAILING_STEP_S, Stack, StackFactory, result_of, uncoded
from scim_readiness.model import CheckResult, Report, Status


def _explain(result: CheckResult) -> list[str]:
    return [f"{f.status} {f.code} {f.title}: {f.observed}" for f in result.findings] + [
        f"{s.status} {s.step}: {s.observed}" for s in result.timeline
    ]


def _all_text(report: Report) -> str:
    parts: list[str] = []
    for check in report.checks:
        for f in check.findings:
            parts += [f.title, f.expected, f.observed, f.why, f.fix, repr(dict(f.evidence))]
        for s in check.timeline:
            parts += [s.step, s.expected, s.observed]
    return "\n".join(parts)


def _probe_token(stack: Stack) -> str:
    return stack.demo.secrets_env()["SCIM_READINESS_PROBE_TOKEN"]


def test_group_roles_probe_error_after_step_1_is_error_never_a_fail(stack: Stack) -> None:
    token = _probe_token(stack)
    upstream = stack.app.base_url
    # The test user is looked up by its email ("...-Roles@..."): the first answer that finds
    # it settles step 1, and every later lookup of it fails.
    with faulty_probe(upstream, stack.demo.ca_path, marker="-roles@", found_before_failing=1) as p:
        config = p.config(stack.config(), secret_in_url=token)
        report = stack.run(config, "group-roles")
        assert p.failed >= 3
    result = result_of(report, "group-roles")
    assert result.status is Status.ERROR, _explain(result)
    assert not [f for f in result.findings if f.status is Status.FAIL], _explain(result)
    steps = {s.step: s for s in result.timeline}
    assert steps["1. no mapped group"].status is Status.PASS
    broken = steps["2. join Engineering"]
    assert broken.status is Status.ERROR and "503" in broken.observed, broken
    later = [s for s in result.timeline if s.step[0] not in "12"]
    assert later, result.timeline
    for step in later:
        assert step.status is Status.SKIP, step
        assert step.observed == "not judged: the probe failed at step 2. join Engineering", step
    errors = [f for f in result.findings if f.status is Status.ERROR]
    assert [f.code for f in errors] == ["GRP013"], _explain(result)
    assert "answered HTTP 503" in errors[0].observed
    # The probe's reason is shown, its URL's secret is not.
    assert token not in _all_text(report)
    assert uncoded(report) == []


def test_user_lifecycle_probe_error_at_create_says_so_for_the_later_steps(stack: Stack) -> None:
    token = _probe_token(stack)
    upstream = stack.app.base_url
    with faulty_probe(
        upstream, stack.demo.ca_path, marker="-lifecycle", found_before_failing=0
    ) as p:
        config = p.config(stack.config(), secret_in_url=token)
        report = stack.run(config, "user-lifecycle")
        assert p.failed >= 3
    result = result_of(report, "user-lifecycle")
    assert result.status is Status.ERROR, _explain(result)
    assert not [f for f in result.findings if f.status is Status.FAIL], _explain(result)
    first, *later = result.timeline
    assert first.step == "1. create" and first.status is Status.ERROR, first
    assert len(later) == 5
    for step in later:
        assert step.status is Status.SKIP, step
        assert step.observed == (
            "not judged: the probe failed at step 1. create, so the test user was never seen"
        ), step
        assert "never appeared" not in step.observed
    assert token not in _all_text(report)
    assert uncoded(report) == []


def test_reactivation_is_not_judged_when_the_user_never_went_inactive(
    stack_factory: StackFactory,
) -> None:
    # An app that ignores deactivation keeps the user active: "active again" after the
    # reactivation would be seen at the first look, although the app did nothing for it.
    with stack_factory(flaws=("ignore-deactivation",)) as stack:
        report = stack.run(stack.config(step_timeout_s=FAILING_STEP_S), "user-lifecycle")
    result = result_of(report, "user-lifecycle")
    steps = {s.step: s for s in result.timeline}
    assert steps["4. deactivate"].status is Status.FAIL
    reactivated = steps["5. reactivate"]
    assert reactivated.status is Status.SKIP, reactivated
    assert reactivated.observed.startswith(
        "not judged: the app already showed this state before the change (step 4. deactivate "
        "did not reach its own"
    ), reactivated
    # The user was seen active before the delete: the delete is judged on what it did.
    assert steps["6. delete"].status is Status.PASS, steps["6. delete"]
    skipped = [f for f in result.findings if f.status is Status.SKIP and f.code == "ULC007"]
    assert [f.title for f in skipped] == ["Step 5. reactivate: not judged"]
    assert not [f for f in result.findings if f.status is Status.PASS and f.code == "ULC007"]
    assert result.status is Status.FAIL
    assert uncoded(report) == []


def test_access_seen_working_then_unreadable_is_error_not_fail(
    stack_factory: StackFactory,
) -> None:
    # Sessions survive deactivation here, but the access check fails after the first look
    # that saw them working (two checks at issue, two at that look): what they were at the
    # end of the wait was never seen.
    with stack_factory(flaws=("sessions-survive-deprovisioning",)) as stack:
        upstream = stack.app.base_url
        with faulty_probe(
            upstream, stack.demo.ca_path, marker="/api/me", found_before_failing=4
        ) as p:
            config = p.access_config(stack.config(step_timeout_s=FAILING_STEP_S))
            report = stack.run(config, "user-lifecycle")
    result = result_of(report, "user-lifecycle")
    access = next(f for f in result.findings if f.title == "Access ends on deactivation")
    assert access.status is Status.ERROR, _explain(result)
    assert "answered HTTP 503" in access.observed
    assert access.observed.endswith("an earlier look found still working: session and api token")
    assert not [f for f in result.findings if f.status is Status.FAIL], _explain(result)


def test_a_delete_the_probe_could_not_see_keeps_the_users_ledger_line(
    stack_factory: StackFactory,
) -> None:
    # The app ignores deletes, and the probe breaks right after it showed the reactivation:
    # the check cannot tell whether its delete took effect, so the test user's ledger line
    # must stay open for its cleanup to remove the user again. Closed after the unseen
    # delete, the user would stay active in the app with nothing on record.
    with stack_factory(flaws=("ignore-delete",)) as stack:
        upstream = stack.app.base_url
        with faulty_probe(
            upstream, stack.demo.ca_path, marker="-lifecycle", trips=_active_again()
        ) as p:
            config = p.config(stack.config(), secret_in_url=_probe_token(stack))
            report = stack.run(config, "user-lifecycle")
            assert p.failed >= 1
        deletes = stack.app.store.processed_events_of_type("organization.directory.user_deleted")
    result = result_of(report, "user-lifecycle")
    steps = {s.step: s for s in result.timeline}
    assert steps["5. reactivate"].status is Status.PASS, _explain(result)
    assert steps["6. delete"].status is Status.ERROR, steps["6. delete"]
    assert not [f for f in result.findings if f.status is Status.FAIL], _explain(result)
    # The check's own delete, then its cleanup's for the line left open (one per email the
    # user was given): a line closed after the unseen delete would leave only the first.
    assert deletes >= 2, deletes


def _active_again() -> Callable[[bytes], bool]:
    """True for the first probe answer showing the user active after one showed it inactive."""
    inactive_seen = False

    def trips(body: bytes) -> bool:
        nonlocal inactive_seen
        active = json.loads(body).get("active")
        inactive_seen = inactive_seen or active is False
        return inactive_seen and active is True

    return trips
