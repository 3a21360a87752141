"""group-roles against the emulator and the reference app, in both modes."""

from __future__ import annotations

import pytest

from checks_roundtrip.stack import FAILING_STEP_S, Stack, result_of, uncoded
from scim_readiness.model import Status
from scim_readiness.plugin.ledger import Ledger


@pytest.mark.parametrize("mode", ["events", "scim"])
def test_clean_app_passes(stack: Stack, mode: str) -> None:
    report = stack.run(stack.config(mode=mode), "group-roles")
    result = result_of(report, "group-roles")
    assert result.status is Status.PASS, [
        f"{f.status} {f.title}: {f.observed}" for f in result.findings
    ]
    for step in result.timeline:
        print(step)
    assert Ledger(stack.ledger_path, report.run_id).outstanding(report.run_id) == []
    assert stack.active_test_users() == []
    assert uncoded(report) == []


def test_without_probe_app_steps_are_skip_never_pass(stack: Stack) -> None:
    report = stack.run(stack.config(probe=False), "group-roles")
    result = result_of(report, "group-roles")
    assert result.timeline and {step.status for step in result.timeline} == {Status.SKIP}
    passed = [f.title for f in result.findings if f.status is Status.PASS]
    # Only what was observed passes: the role assignments read from Scalekit.
    assert passed == ["Role assignments cover all 2 configured groups"]
    assert any("no probe configured" in f.title for f in result.findings)
    assert stack.active_test_users() == []


def test_without_probe_or_scalekit_nothing_passes(stack: Stack) -> None:
    report = stack.run(stack.config(probe=False, scalekit=False), "group-roles")
    result = result_of(report, "group-roles")
    assert result.status is Status.SKIP
    assert not [f for f in result.findings if f.status is Status.PASS]


def test_without_scalekit_roles_come_from_the_config_map(stack: Stack) -> None:
    report = stack.run(stack.config(scalekit=False), "group-roles")
    result = result_of(report, "group-roles")
    # The app side passes, but the role assignments (essential) were not read: SKIP.
    assert result.status is Status.SKIP
    assert result.findings[0].title == (
        "Role assignments not checked: no Scalekit credentials configured"
    )
    assert any("from the config map" in f.title for f in result.findings)
    assert {step.status for step in result.timeline} == {Status.PASS}
    assert stack.active_test_users() == []


def test_highest_precedence_is_expected_when_configured(stack: Stack) -> None:
    # The reference app applies every role; a config that promises only the highest one
    # must see that difference at the step where a second group is joined.
    roles = {
        "map": {"Engineering": "editor", "Admins": "admin"},
        "combine": "highest",
        "precedence": ["admin", "editor"],
    }
    report = stack.run(stack.config(roles=roles, step_timeout_s=FAILING_STEP_S), "group-roles")
    result = result_of(report, "group-roles")
    assert result.status is Status.FAIL
    failed = [step.step for step in result.timeline if step.status is Status.FAIL]
    assert failed[0] == "3. join Admins"
    assert "roles [admin]" in next(s.expected for s in result.timeline if s.step == failed[0])
    assert uncoded(report) == []


def test_default_role_expected_in_no_mapped_group(stack: Stack) -> None:
    # The reference app has no default role: a config promising one fails at step 1.
    roles = {"map": {"Engineering": "editor", "Admins": "admin"}, "default_role": "viewer"}
    report = stack.run(stack.config(roles=roles, step_timeout_s=FAILING_STEP_S), "group-roles")
    result = result_of(report, "group-roles")
    steps = {step.step: step for step in result.timeline}
    assert steps["1. no mapped group"].status is Status.FAIL
    assert steps["1. no mapped group"].expected.startswith("roles [viewer]")
    assert steps["2. join Engineering"].status is Status.PASS
    assert stack.active_test_users() == []


def test_one_configured_group_warns_about_the_other_and_skips_combining(stack: Stack) -> None:
    report = stack.run(stack.config(roles={"map": {"Engineering": "editor"}}), "group-roles")
    result = result_of(report, "group-roles")
    assert result.status is Status.WARN
    warned = [f.title for f in result.findings if f.status is Status.WARN]
    assert warned == ["Directory maps group 'Admins' to admin; the config does not mention it"]
    assert any("Combining two mapped groups not tested" in f.title for f in result.findings)
    assert [step.step for step in result.timeline] == [
        "1. no mapped group",
        "2. join Engineering",
        "3. leave every mapped group",
        "4. join test group",
        "5. delete test group",
    ]
    assert {step.status for step in result.timeline} == {Status.PASS}


def test_without_directory_id_the_organisations_first_directory_is_used(stack: Stack) -> None:
    config = stack.config()
    unnamed = config.scalekit.model_copy(update={"directory_id": None})
    report = stack.run(config.model_copy(update={"scalekit": unnamed}), "group-roles")
    result = result_of(report, "group-roles")
    assert result.status is Status.PASS, [f.title for f in result.findings]
    assert "Role assignments cover all 2 configured groups" in [f.title for f in result.findings]


def _roles_only(expected: str) -> str:
    return expected.removesuffix(" (in no mapped group)")


@pytest.mark.parametrize(
    ("mode", "roles"),
    [("events", {"map": {"Engineering": "editor"}}), ("events", None), ("scim", None)],
    ids=["events-one-group", "events-two-groups", "scim"],
)
def test_a_step_passes_only_when_its_change_moves_the_expected_roles(
    stack: Stack, mode: str, roles: dict[str, object] | None
) -> None:
    # A step whose expected roles are those before its change passes at the first look
    # whether or not the app processed anything: it must be SKIP, "not observable".
    report = stack.run(stack.config(mode=mode, roles=roles), "group-roles")
    result = result_of(report, "group-roles")
    timeline = result.timeline
    for before, step in zip(timeline, timeline[1:], strict=False):
        if step.status is Status.SKIP:
            assert step.observed.startswith("not observable: the expected roles equal"), step
        else:
            assert step.status is Status.PASS, step
            assert _roles_only(step.expected) != _roles_only(before.expected), step
    steps = {step.step.split(". ", 1)[1]: step for step in timeline}
    test_group = {steps["join test group"].status, steps["delete test group"].status}
    if mode == "events":
        # Acting as Scalekit, the checker gives the test group a role, whatever the map.
        assert test_group == {Status.PASS}
    else:
        # Scalekit gives a group new to the directory no role: nothing to observe.
        assert test_group == {Status.SKIP}
        skipped = [f.title for f in result.findings if f.status is Status.SKIP]
        assert any("join test group not observable" in title for title in skipped), skipped
    assert result.status in (Status.PASS, Status.WARN), [
        f"{f.status} {f.title}" for f in result.findings
    ]
    assert stack.active_test_users() == []


def test_a_step_that_should_not_move_roles_still_fails_when_the_app_moves_them(
    stack: Stack,
) -> None:
    # Under highest with editor ranked first, joining Admins leaves the expected roles at
    # editor: not observable as a PASS, but the reference app applies both roles, and a
    # state seen to differ is a FAIL all the same.
    roles = {
        "map": {"Engineering": "editor", "Admins": "admin"},
        "combine": "highest",
        "precedence": ["editor", "admin"],
    }
    report = stack.run(stack.config(roles=roles, step_timeout_s=FAILING_STEP_S), "group-roles")
    result = result_of(report, "group-roles")
    steps = {step.step: step for step in result.timeline}
    assert steps["3. join Admins"].status is Status.FAIL, steps["3. join Admins"]
    assert result.status is Status.FAIL
    assert stack.active_test_users() == []
