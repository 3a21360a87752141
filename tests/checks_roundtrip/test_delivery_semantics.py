"""delivery-semantics against the demo stack: every scenario passes on the clean reference
app, and each scenario fails on the app with the flaw that re-creates its defect (and only
that scenario fails); the organisation-wide scenarios need a test organisation; nothing
test-made survives."""

from __future__ import annotations

from typing import Any

import pytest

from checks_roundtrip.stack import Stack, StackFactory, result_of
from checks_roundtrip.test_flaws import assert_nothing_left, explain
from scim_readiness.config import Config
from scim_readiness.model import CheckResult, Status

CHECK_ID = "delivery-semantics"
TITLES = {
    "stale-update": "Stale update delivered last",
    "update-after-delete": "Update delivered after the delete",
    "delete-before-create": "Delete delivered before the create",
    "concurrent-duplicates": "Identical deliveries at once",
    "dropped-redelivery": "Delivery dropped before its answer, then redelivered",
    "rehire": "Re-hire with a deleted user's email",
    "group-rename": "Group renamed",
    "second-organization": "Same email in a second organisation",
    "directory-disabled": "Directory disabled",
    "burst": "Burst of updates applied",
}
# flaw -> the one scenario it must fail
FLAW_SCENARIO = {
    "stale-update-wins": "stale-update",
    "update-resurrects-deleted": "update-after-delete",
    "delete-before-create-forgotten": "delete-before-create",
    "racy-duplicate-deliveries": "concurrent-duplicates",
    "dedupe-before-apply": "dropped-redelivery",
    "email-reuse-refused": "rehire",
    "email-unique-across-tenants": "second-organization",
    "directory-disabled-ignored": "directory-disabled",
    "roles-follow-group-name": "group-rename",
    "slow-update-backlog": "burst",
}


def config(stack: Stack, **options: Any) -> Config:
    raw = stack.demo.raw_config(env_refs=False)["checks"][CHECK_ID]["options"]
    return stack.demo.config(
        checks={"allow_mutation": True, CHECK_ID: {"options": {**raw, **options}}}
    )


def statuses(result: CheckResult) -> dict[str, Status]:
    return {f.evidence["scenario"]: f.status for f in result.findings if "scenario" in f.evidence}


def run_check(stack: Stack, cfg: Config) -> CheckResult:
    return result_of(stack.run(cfg, CHECK_ID), CHECK_ID)


def test_clean_app_passes_every_scenario_with_a_timeline(stack: Stack) -> None:
    report = stack.run(config(stack), CHECK_ID)
    result = result_of(report, CHECK_ID)
    assert result.status is Status.PASS, explain(report)
    assert statuses(result) == dict.fromkeys(TITLES, Status.PASS)
    by_key = {f.evidence["scenario"]: f for f in result.findings if "scenario" in f.evidence}
    for key, title in TITLES.items():
        assert by_key[key].title == title
        assert by_key[key].evidence["timeline"], key
        assert any(step.step.startswith(f"{key}: ") for step in result.timeline), key
    assert result.metrics["burst"]["applied_s"] is not None
    (answers,) = [f for f in result.findings if f.evidence.get("answers_of")]
    assert answers.status is Status.PASS and "200" in answers.observed
    assert_nothing_left(stack, report)


@pytest.mark.slow
@pytest.mark.parametrize("flaw", sorted(FLAW_SCENARIO))
def test_each_flaw_fails_exactly_its_scenario(stack_factory: StackFactory, flaw: str) -> None:
    with stack_factory(flaws=(flaw,)) as stack:
        report = stack.run(config(stack), CHECK_ID)
        result = result_of(report, CHECK_ID)
        assert result.status is Status.FAIL, explain(report)
        expected = dict.fromkeys(TITLES, Status.PASS)
        expected[FLAW_SCENARIO[flaw]] = Status.FAIL
        assert statuses(result) == expected, explain(report)
        failed = next(f for f in result.findings if f.status is Status.FAIL)
        assert failed.why and failed.fix
        assert_nothing_left(stack, report)


def test_without_a_test_organisation_the_organisation_wide_scenarios_skip(stack: Stack) -> None:
    cfg = config(stack).model_copy(update={"test_organization": None})
    result = run_check(stack, cfg)
    assert result.status is Status.PASS
    seen = statuses(result)
    assert seen["second-organization"] is Status.SKIP
    assert seen["directory-disabled"] is Status.SKIP
    skipped = [f for f in result.findings if f.status is Status.SKIP]
    assert all("no test_organization is configured" in f.observed for f in skipped)
    assert not [s for s in result.timeline if s.step.startswith("directory-disabled")]


@pytest.mark.slow
def test_a_refused_rehire_declared_deliberate_is_a_warning(stack_factory: StackFactory) -> None:
    with stack_factory(flaws=("email-reuse-refused",)) as stack:
        result = run_check(stack, config(stack, rehire_refused_by_design=True))
        assert result.status is Status.WARN, [f.observed for f in result.findings]
        assert statuses(result)["rehire"] is Status.WARN
        (warned,) = [f for f in result.findings if f.status is Status.WARN]
        assert "409" in warned.observed and "rehire_refused_by_design" in warned.observed


def test_without_a_probe_nothing_is_sent_and_the_check_skips(stack: Stack) -> None:
    users_before = stack.app.store.count_users()
    result = run_check(stack, config(stack).model_copy(update={"probe": None}))
    assert result.status is Status.SKIP
    assert "no probe is configured" in result.findings[0].observed
    assert stack.app.store.count_users() == users_before


def test_an_invalid_option_is_an_error_naming_it(stack: Stack) -> None:
    result = run_check(stack, config(stack, burst_size="lots"))
    assert result.status is Status.ERROR
    assert any("burst_size" in f.observed + f.title for f in result.findings), result.findings
