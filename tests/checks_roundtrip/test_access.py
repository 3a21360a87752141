"""user-lifecycle judges deprovisioning by access: with probe.access, a session and an API
token issued for the test user must stop working after deactivation and after delete."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from checks_roundtrip.stack import FAILING_STEP_S, Stack, StackFactory, result_of
from checks_roundtrip.test_flaws import assert_nothing_left, explain
from scim_readiness.model import Finding, Report, Status

TITLES = ("Access ends on deactivation", "Access ends on delete")


def access_findings(report: Report) -> dict[str, Finding]:
    result = result_of(report, "user-lifecycle")
    return {f.title: f for f in result.findings if f.title in TITLES}


@pytest.mark.parametrize("mode", ["events", "scim"])
def test_clean_app_ends_sessions_and_tokens(stack: Stack, mode: str) -> None:
    report = stack.run(stack.config(mode=mode), "user-lifecycle")
    assert result_of(report, "user-lifecycle").status is Status.PASS, explain(report)
    found = access_findings(report)
    assert [found[t].status for t in TITLES] == [Status.PASS, Status.PASS]
    assert_nothing_left(stack, report)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["events", "scim"])
def test_sessions_that_survive_deprovisioning_fail_user_lifecycle(
    stack_factory: StackFactory, mode: str
) -> None:
    with stack_factory(flaws=("sessions-survive-deprovisioning",)) as stack:
        report = stack.run(stack.config(mode=mode, step_timeout_s=FAILING_STEP_S))
        result = result_of(report, "user-lifecycle")
        assert result.status is Status.FAIL, explain(report)
        # The active flag is right: every step passes; only access gives it away.
        assert {step.status for step in result.timeline} == {Status.PASS}
        found = access_findings(report)
        for title in TITLES:
            finding = found[title]
            assert finding.status is Status.FAIL
            assert "session and api token" in finding.observed
        assert result_of(report, "group-roles").status is Status.PASS
        assert_nothing_left(stack, report)


def test_without_probe_access_the_access_findings_skip(stack: Stack) -> None:
    config = stack.config()
    assert config.probe is not None
    no_access = config.probe.model_copy(update={"access": None})
    report = stack.run(config.model_copy(update={"probe": no_access}), "user-lifecycle")
    assert result_of(report, "user-lifecycle").status is Status.PASS
    for finding in access_findings(report).values():
        assert finding.status is Status.SKIP
        assert "no probe.access is configured" in finding.observed


def test_a_refused_issue_hook_is_an_error_without_the_token(stack: Stack) -> None:
    config = stack.config()
    assert config.probe is not None and config.probe.access is not None
    wrong = config.probe.access.model_copy(
        update={"headers": {"Authorization": SecretStr("Bearer not-the-token")}}
    )
    probe = config.probe.model_copy(update={"access": wrong})
    report = stack.run(config.model_copy(update={"probe": probe}), "user-lifecycle")
    found = access_findings(report)
    for finding in found.values():
        assert finding.status is Status.ERROR
        assert "HTTP 401" in finding.observed
        assert "not-the-token" not in finding.observed
    assert result_of(report, "user-lifecycle").status is Status.ERROR
