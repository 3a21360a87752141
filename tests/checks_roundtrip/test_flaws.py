"""Each flaw of the reference app is caught by the check that exists for it, at the step that
broke, and leaves the other round-trip check's verdict alone; nothing test-made survives."""

from __future__ import annotations

import pytest

from checks_roundtrip.stack import (
    FAILING_STEP_S,
    Stack,
    StackFactory,
    result_of,
    steps_by_status,
    uncoded,
)
from scim_readiness.model import Report, Status
from scim_readiness.plugin.ledger import Ledger

MODES = ["events", "scim"]

# flaw -> (check that must FAIL, the step that must FAIL, the other check's status)
FLAWS = {
    "ignore-deactivation": ("user-lifecycle", "4. deactivate", Status.PASS),
    "ignore-delete": ("user-lifecycle", "6. delete", Status.PASS),
    # group-roles read the role assignments, but its app side is SKIP (a user the app never
    # creates has no roles to observe), an essential assertion: the check is SKIP, not PASS.
    "legacy-event-names": ("user-lifecycle", "1. create", Status.SKIP),
    # user-lifecycle's person has an accented or CJK name; every other check's is ASCII.
    "ascii-only-names": ("user-lifecycle", "1. create", Status.PASS),
    "roles-ignored": ("group-roles", "2. join Engineering", Status.PASS),
    "first-role-only": ("group-roles", "3. join Admins", Status.PASS),
}
OTHER = {"user-lifecycle": "group-roles", "group-roles": "user-lifecycle"}


def assert_nothing_left(stack: Stack, report: Report) -> None:
    assert Ledger(stack.ledger_path, report.run_id).outstanding(report.run_id) == []
    assert stack.active_test_users() == []
    assert stack.directory_test_users() == []
    assert stack.directory_test_groups() == []


def explain(report: Report) -> list[str]:
    return [
        f"{check.id} {check.status}: {f.status} {f.title}: {f.observed}"
        for check in report.checks
        for f in check.findings
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flaw", sorted(FLAWS))
def test_flaw_fails_its_check_at_its_step(
    stack_factory: StackFactory, flaw: str, mode: str
) -> None:
    check_id, step, other_status = FLAWS[flaw]
    with stack_factory(flaws=(flaw,)) as stack:
        report = stack.run(stack.config(mode=mode, step_timeout_s=FAILING_STEP_S))
        result = result_of(report, check_id)
        assert result.status is Status.FAIL, explain(report)
        assert steps_by_status(result)[step] == "FAIL", result.timeline
        # Every finding, the failing step's included, carries a code of its check's catalogue.
        assert uncoded(report) == []
        # The failing step is named in a FAIL finding, so the report says where it broke.
        assert any(f.status is Status.FAIL and step in f.title for f in result.findings), explain(
            report
        )
        if flaw != "legacy-event-names":
            assert not any("legacy" in f.title for f in result.findings), explain(report)
        other = result_of(report, OTHER[check_id])
        assert other.status is other_status, explain(report)
        if flaw == "legacy-event-names":
            # The finding names the cause, seen by sending the legacy name once.
            named = [f for f in result.findings if "acts only on legacy event names" in f.title]
            assert named and "scalekit.dir.user.create" in named[0].observed, explain(report)
            assert {step.status for step in other.timeline} == {Status.SKIP}
            assert not any(f.status is Status.PASS and "app" in f.title for f in other.findings)
        assert_nothing_left(stack, report)


@pytest.mark.parametrize("mode", MODES)
def test_missing_role_assignment_fails_group_roles_only(
    stack_factory: StackFactory, mode: str
) -> None:
    with stack_factory(flaws=("role-mapping-missing",)) as stack:
        report = stack.run(stack.config(mode=mode, step_timeout_s=FAILING_STEP_S))
        roles = result_of(report, "group-roles")
        assert roles.status is Status.FAIL, explain(report)
        titles = [f.title for f in roles.findings if f.status is Status.FAIL]
        assert titles == ["Configured group 'Admins' has no role assignment"], explain(report)
        # The app side still runs with the group that is mapped, and passes; in scim mode
        # the test group's steps cannot move roles (Scalekit gives it none) and are SKIP.
        skipped = {step.step for step in roles.timeline if step.status is not Status.PASS}
        expected = {"4. join test group", "5. delete test group"} if mode == "scim" else set()
        assert skipped == expected, explain(report)
        assert result_of(report, "user-lifecycle").status is Status.PASS, explain(report)
        assert_nothing_left(stack, report)


def test_app_that_ignores_scim_deletes_is_deprovisioned_even_with_an_id_only_probe(
    stack_factory: StackFactory,
) -> None:
    with stack_factory(flaws=("ignore-delete",)) as stack:
        config = stack.config(mode="scim", step_timeout_s=FAILING_STEP_S)
        assert config.probe is not None and config.probe.http is not None
        by_id_only = config.probe.model_copy(
            update={"http": config.probe.http.model_copy(update={"user_by_email": None})}
        )
        report = stack.run(config.model_copy(update={"probe": by_id_only}), "user-lifecycle")
        assert steps_by_status(result_of(report, "user-lifecycle"))["6. delete"] == "FAIL"
        assert_nothing_left(stack, report)


# Flaws of delivery semantics and of access: each FAILs exactly its check among the three
# that change users; the other two keep their clean verdict (PASS).
DELIVERY_FLAWS = {
    "stale-update-wins": "delivery-semantics",
    "update-resurrects-deleted": "delivery-semantics",
    "delete-before-create-forgotten": "delivery-semantics",
    "racy-duplicate-deliveries": "delivery-semantics",
    "dedupe-before-apply": "delivery-semantics",
    "email-reuse-refused": "delivery-semantics",
    "email-unique-across-tenants": "delivery-semantics",
    "directory-disabled-ignored": "delivery-semantics",
    "roles-follow-group-name": "delivery-semantics",
    "slow-update-backlog": "delivery-semantics",
    "sessions-survive-deprovisioning": "user-lifecycle",
}
MUTATING = ("user-lifecycle", "group-roles", "delivery-semantics")


def test_the_delivery_flaw_matrix_names_every_new_flaw() -> None:
    from scim_readiness.devstack.demo_stack import all_flaws

    for flaw, check_id in DELIVERY_FLAWS.items():
        assert all_flaws()[flaw].check == check_id


@pytest.mark.slow
@pytest.mark.parametrize("flaw", sorted(DELIVERY_FLAWS))
def test_delivery_flaw_fails_only_its_check(stack_factory: StackFactory, flaw: str) -> None:
    with stack_factory(flaws=(flaw,)) as stack:
        report = stack.run(stack.config(step_timeout_s=FAILING_STEP_S), *MUTATING)
        seen = {check_id: result_of(report, check_id).status for check_id in MUTATING}
        expected = dict.fromkeys(MUTATING, Status.PASS)
        expected[DELIVERY_FLAWS[flaw]] = Status.FAIL
        assert seen == expected, explain(report)
        assert_nothing_left(stack, report)
