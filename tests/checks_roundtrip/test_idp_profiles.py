"""mode scim speaks each IdP's dialect (option idp_profile): the emulator turns Okta's,
Entra's and Google's requests into the same events, so the clean app passes and a defect is
still caught at its step."""

from __future__ import annotations

import pytest

from checks_roundtrip.stack import FAILING_STEP_S, Stack, StackFactory, result_of, steps_by_status
from checks_roundtrip.test_flaws import assert_nothing_left, explain
from scim_readiness.model import Status

PROFILES = ["generic", "okta", "entra", "google"]


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_passes_on_the_clean_app(stack: Stack, profile: str) -> None:
    options = {"mode": "scim", "step_timeout_s": 10.0, "idp_profile": profile}
    report = stack.run(stack.config(mode="scim", options=options))
    for check_id in ("user-lifecycle", "group-roles"):
        assert result_of(report, check_id).status is Status.PASS, explain(report)
    assert_nothing_left(stack, report)


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["okta", "entra"])
def test_a_deactivation_in_the_dialect_is_still_judged(
    stack_factory: StackFactory, profile: str
) -> None:
    with stack_factory(flaws=("ignore-deactivation",)) as stack:
        options = {"mode": "scim", "step_timeout_s": FAILING_STEP_S, "idp_profile": profile}
        report = stack.run(stack.config(mode="scim", options=options), "user-lifecycle")
        result = result_of(report, "user-lifecycle")
        assert steps_by_status(result)["4. deactivate"] == "FAIL", explain(report)
        assert_nothing_left(stack, report)


def test_an_unknown_profile_is_an_error_naming_the_choices(stack: Stack) -> None:
    options = {"mode": "scim", "idp_profile": "onelogin"}
    report = stack.run(stack.config(mode="scim", options=options), "user-lifecycle")
    result = result_of(report, "user-lifecycle")
    assert result.status is Status.ERROR
    text = " ".join(f.title + " " + f.observed for f in result.findings)
    assert "idp_profile" in text and "okta" in text, text
