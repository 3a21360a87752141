"""`data-model`: the directory (emulator, real SDK paging) against the app (real HTTP probe)."""

from __future__ import annotations

import pytest
from scim_readiness.checks.data_model import CHECK

from checks_scalekit.conftest import StackFactory
from checks_scalekit.stack import Stack, check, finding, titles, wait_for_app_users
from scim_readiness.config import Config
from scim_readiness.devstack.emulator.state import DirUser
from scim_readiness.devstack.sampleapp.store import NewUser
from scim_readiness.model import CheckResult, Severity, Status


def data_model(stack: Stack, config: Config | None = None) -> CheckResult:
    # The demo's config leaves roles to group-roles; these tests are about data-model's own
    # role reconciliation, which is on by default in a real config.
    if config is None:
        config = stack.config(checks={"data-model": {"options": {"compare_roles": True}}})
    return check(stack, "data-model", config)


def codes_by_title(result: CheckResult) -> dict[str, str]:
    """Each finding's code, checked against the check's catalogue."""
    catalogue = {code.code for code in CHECK.codes}
    assert {f.code for f in result.findings} <= catalogue, [
        (f.code, f.title) for f in result.findings
    ]
    return {f.title.split(": ")[0]: f.code for f in result.findings}


def test_clean_setup_passes(stack: Stack) -> None:
    result = data_model(stack)
    assert result.status is Status.PASS, [(f.status, f.title, f.observed) for f in result.findings]
    assert "5 matched; 2 groups, 2 mapped to roles" in finding(result, "reconciles").observed
    assert finding(result, "maps to the app's tenant").observed == (
        "all 5 matched users are in tenant 'tenant-acme'"
    )
    assert result.metrics["directory_users"] == 5
    assert codes_by_title(result) == {
        "Organisation maps to the app's tenant": "DMD005",
        "Every directory user reconciles with the app": "DMD004",
        "Every directory user has the attributes the app requires": "DMD014",
    }


def test_wrong_tenant_mapping_fails(stack_factory: StackFactory) -> None:
    with stack_factory(("wrong-tenant-mapping",)) as stack:
        result = data_model(stack)
        org_id = stack.emulator.organization_id
    assert result.status is Status.FAIL
    failed = finding(result, "under another tenant")
    assert failed.severity is Severity.CRITICAL
    assert f"5 of 5 matched users in another tenant ('{org_id}': 5)" in failed.observed
    # The wrong tenant is the only defect: users themselves reconcile.
    assert "reconciles" in " ".join(titles(result, Status.PASS))


def test_user_deactivated_in_directory_but_active_in_app_fails(stack: Stack) -> None:
    emu = stack.emulator
    directory = emu.state.directory(emu.directory_id)
    user = next(u for u in directory.users.values() if u.user_name.startswith("alan"))
    user.active = False  # drift: the deactivation never reached the app
    result = data_model(stack)
    assert result.status is Status.FAIL
    failed = finding(result, "deactivated in the directory are still active")
    assert failed.title.endswith(": 1")
    assert failed.severity is Severity.CRITICAL
    assert f"{user.id} <{user.email}>" in failed.observed
    assert failed.evidence["samples"][0]["directory_user_id"] == user.id


def test_missing_extra_email_and_role_drift_are_all_reported(stack: Stack) -> None:
    emu, store = stack.emulator, stack.app.store
    directory = emu.state.directory(emu.directory_id)
    users = {u.user_name.split(".")[0]: u for u in directory.users.values()}
    users["ada"].email = "ada.byron@acme-corp.example"  # renamed without an event
    admins = next(g for g in directory.groups.values() if g.display_name == "Admins")
    emu.state._join(directory, users["alan"], admins)  # joined Admins, app never told
    # A user the app never heard of (a bulk import sends no events), and an app user whose
    # directory user is gone.
    emu.generate_users(n=1, domain="new-hires.example")
    newcomer = next(u for u in directory.users.values() if u.email.endswith("new-hires.example"))
    store.bulk_insert_users(
        [
            NewUser(
                "diruser_gone0000000000001",
                emu.organization_id,
                "left@acme-corp.example",
                "Left Company",
                True,
                ("editor",),
                "tenant-acme",
                {},
            ),
        ]
    )

    result = data_model(stack)
    assert result.status is Status.FAIL
    counts = {
        f.title.split(": ")[0]: f.evidence.get("count")
        for f in result.findings
        if f.status is Status.FAIL
    }
    assert counts == {
        "Active directory users are missing in the app": 1,
        "Active app users are no longer in the directory": 1,
        "App users have a different email than the directory": 1,
        "App roles differ from what the directory's groups grant": 1,
    }
    assert f"{newcomer.id} <{newcomer.email}>" in finding(result, "missing in the app").observed
    assert "diruser_gone0000000000001" in finding(result, "no longer in the directory").observed
    assert finding(result, "no longer in the directory").severity is Severity.CRITICAL
    role = finding(result, "App roles differ").observed
    assert "app roles {editor}, directory implies {admin, editor}" in role
    # One code per kind of drift: a waiver can accept one kind without hiding the others.
    codes = codes_by_title(result)
    assert [codes[title] for title in counts] == ["DMD006", "DMD008", "DMD011", "DMD012"]


def test_a_user_held_by_email_alone_is_unlinked_not_missing(stack: Stack) -> None:
    emu, store = stack.emulator, stack.app.store
    directory = emu.state.directory(emu.directory_id)
    emu.generate_users(n=2, domain="by-email.example")
    held, absent = sorted(
        (u for u in directory.users.values() if u.email.endswith("by-email.example")),
        key=lambda u: u.email,
    )
    # An app keyed by email: it holds this person, without the directory user id.
    store.bulk_insert_users(
        [
            NewUser(
                "", emu.organization_id, held.email.upper(), held.name, True, (), "tenant-acme", {}
            )
        ]
    )
    result = data_model(stack)
    assert result.status is Status.FAIL  # the absent one is still missing
    unlinked = finding(result, "by email only")
    assert unlinked.status is Status.WARN
    assert unlinked.title == (
        "Directory users are in the app by email only, not linked by directory user id: 1"
    )
    assert held.id in unlinked.observed and "no directory user id" in unlinked.observed
    assert "look users up by it" in unlinked.fix
    missing = finding(result, "missing in the app")
    assert missing.title.endswith(": 1") and absent.id in missing.observed
    assert held.id not in missing.observed


def test_the_checkers_own_test_identities_are_left_out(stack: Stack) -> None:
    from scim_readiness.plugin.identities import TestIdentities

    emu = stack.emulator
    directory = emu.state.directory(emu.directory_id)
    # A test user of another (interrupted) run, mid-way through a lifecycle round trip:
    # deactivated in the directory, the app not told yet.
    identity = TestIdentities(run_id="sr0123456789").user("lifecycle")
    user = emu.state.create_user(
        directory,
        user_name=identity.email,
        email=identity.email,
        given_name=identity.given_name,
        family_name=identity.family_name,
    )
    wait_for_app_users(stack, 6)
    user.active = False
    result = data_model(stack)
    assert result.status is Status.PASS, [(f.status, f.title) for f in result.findings]
    assert "test identities left out (1 in the directory, 1 in the app)" in (
        finding(result, "reconciles").observed
    )


def test_required_attributes_warn_with_the_share_lacking(stack: Stack) -> None:
    config = stack.config(data_model={"required_attributes": ["given_name", "department"]})
    result = data_model(stack, config)
    assert result.status is Status.WARN
    assert (
        finding(result, "lack 'department'").title == "100.0% of directory users lack 'department'"
    )
    assert not [t for t in titles(result) if "given_name" in t and "lack" in t]


def test_without_a_probe_nothing_is_claimed(stack: Stack) -> None:
    result = data_model(stack, stack.config(probe=None))
    assert result.status is Status.SKIP
    assert "probe" in result.findings[0].title + result.findings[0].observed + " ".join(
        f.title for f in result.findings
    )


def test_organisation_without_external_id_fails(stack_factory: StackFactory) -> None:
    from scim_readiness.devstack.emulator import default_seed

    seed = default_seed()
    org = seed.organizations[0].model_copy(update={"external_id": ""})
    with stack_factory(seed=seed.model_copy(update={"organizations": [org]})) as stack:
        config = stack.config(scalekit={"organization_external_id": None})
        result = data_model(stack, config)
    assert result.status is Status.FAIL
    assert finding(result, "no external id").status is Status.FAIL


@pytest.mark.slow
def test_100k_users_with_three_planted_mismatches(stack_factory: StackFactory) -> None:
    with stack_factory() as stack:
        emu, store = stack.emulator, stack.app.store
        emu.generate_users(n=100_000 - 5)
        directory = emu.state.directory(emu.directory_id)
        generated = [u for u in directory.users.values() if u.user_name.startswith("user")]
        assert len(generated) == 99_995
        missing, deactivated, renamed = generated[11_111], generated[55_555], generated[99_000]
        deactivated.active = False  # the app below still holds this user as active

        def mirror(user: DirUser) -> NewUser:
            email = "stale@bulk.example" if user is renamed else user.email
            return NewUser(
                user.id, emu.organization_id, email, user.name, True, (), "tenant-acme", {}
            )

        store.bulk_insert_users(mirror(u) for u in generated if u is not missing)
        assert store.count_users() == 100_000 - 1

        config = stack.config(checks={"data-model": {"timeout_s": 600}})
        result = data_model(stack, config)

    failed = {f.title: f for f in result.findings if f.status is Status.FAIL}
    assert set(failed) == {
        "Active directory users are missing in the app: 1",
        "Users deactivated in the directory are still active in the app: 1",
        "App users have a different email than the directory: 1",
    }, [(f.status, f.title) for f in result.findings]
    samples = {f.evidence["samples"][0]["directory_user_id"] for f in failed.values()}
    assert samples == {missing.id, deactivated.id, renamed.id}
    assert result.metrics["directory_users"] == 100_000
    # Streaming, not holding both sides: the join never waited on more than a window.
    assert result.metrics["peak_waiting_records"] < 20_000


def test_a_wrong_role_map_is_not_data_drift(stack_factory: StackFactory) -> None:
    # The directory no longer assigns Admins a role although the config maps it: the app,
    # mirroring Scalekit's own role data, is in sync. Judging the map is group-roles' job.
    with stack_factory(("role-mapping-missing",)) as stack:
        result = data_model(stack)
    assert result.status is Status.PASS, [(f.status, f.title) for f in result.findings]


def test_role_drift_and_its_switch(stack_factory: StackFactory) -> None:
    with stack_factory(("roles-ignored",)) as stack:
        result = data_model(stack)
        assert result.status is Status.FAIL
        drift = finding(result, "App roles differ")
        assert drift.evidence["count"] == 4  # every user in a mapped group
        off = stack.config(checks={"data-model": {"options": {"compare_roles": False}}})
        assert data_model(stack, off).status is Status.PASS


def test_a_probe_that_cannot_list_users_is_a_skip_with_the_fix(stack: Stack) -> None:
    probe = stack.config().probe
    assert probe is not None and probe.http is not None
    http = probe.http.model_dump(mode="json")
    http["headers"] = dict(stack.app.probe_headers)
    http.pop("list_users")
    result = data_model(stack, stack.config(probe={"kind": "http", "http": http}))
    assert result.status is Status.SKIP
    assert "list_users" in result.findings[0].fix


def test_progress_lines_only_when_asked_or_on_a_terminal(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.emulator.generate_users(n=200)
    quiet = data_model(stack)
    assert "directory users read" not in capsys.readouterr().err
    forced = stack.config(
        checks={"data-model": {"options": {"progress": True, "progress_interval_s": 0}}}
    )
    loud = data_model(stack, forced)
    err = capsys.readouterr().err
    assert "data-model: 30 of 205 directory users read (15%)" in err
    assert "data-model: 205 of 205 directory users read (100%)" in err
    assert quiet.status is loud.status


def test_a_pass_without_role_comparison_claims_no_role_drift(stack: Stack) -> None:
    off = stack.config(checks={"data-model": {"options": {"compare_roles": False}}})
    result = data_model(stack, off)
    assert result.status is Status.PASS, [(f.status, f.title) for f in result.findings]
    reconciled = finding(result, "reconciles")
    assert "role" not in reconciled.expected, reconciled.expected
    assert reconciled.observed.endswith("; roles not compared (option compare_roles is off)")
    # Compared, the PASS names role drift among what it looked for.
    assert "role drift" in finding(data_model(stack), "reconciles").expected


def test_an_empty_directory_is_not_a_pass(stack_factory: StackFactory) -> None:
    # Nothing compared is nothing observed: "every directory user reconciles" is not shown
    # by a directory with no users, and the check must not count towards READY.
    from scim_readiness.devstack.emulator import default_seed

    seed = default_seed()
    empty = seed.directories[0].model_copy(update={"users": []})
    with stack_factory(seed=seed.model_copy(update={"directories": [empty]})) as stack:
        result = data_model(stack)
    assert result.status is Status.SKIP, [(f.status, f.title) for f in result.findings]
    assert not [f for f in result.findings if f.status is Status.PASS]
    skipped = finding(result, "no directory users")
    assert skipped.status is Status.SKIP
    assert "0 directory users" in skipped.observed
    assert codes_by_title(result)[skipped.title.split(": ")[0]] == "DMD015"


def test_roles_that_cannot_be_read_are_not_a_silent_no_role_drift(stack: Stack) -> None:
    stack.emulator.delays["ListRoles"] = 30.0
    try:
        config = stack.config(
            scalekit={"timeout_s": 0.5},
            checks={"data-model": {"options": {"compare_roles": True}}},
        )
        result = data_model(stack, config)
    finally:
        stack.emulator.delays.clear()
    skipped = finding(result, "Role drift not compared")
    assert skipped.status is Status.SKIP
    assert skipped.code == "DMD012"
    assert "environment's roles could not be read" in skipped.observed
    reconciled = finding(result, "reconciles")
    assert "role" not in reconciled.expected, reconciled.expected
    assert "roles not compared: the environment's roles could not be read" in reconciled.observed
