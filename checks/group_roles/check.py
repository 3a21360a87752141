"""The body of `group-roles`: see the package's docstring for what it checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from scim_readiness.api import (
    FindingCode,
    FindingRecorder,
    Status,
    TargetError,
    mark_essential,
    skipped_essential,
)
from scim_readiness.parts import CheckParts
from scim_readiness.plugin.target import TargetUnavailable, find_directory
from scim_readiness.provisioning.drivers import (
    ChangeRejected,
    RoleAssignments,
    retire_user,
)
from scim_readiness.provisioning.roundtrip import (
    Stepper,
    app_user_reader,
    describe_user,
    latencies_text,
    latency_summary,
    record_not_observed,
    record_refused,
    remove_test_objects,
    restate_last_step,
    roles_text,
    round_trip_options,
    skipped_unconfigured_mode,
)
from scim_readiness.provisioning.steps import Step, StepOutcome

from . import (
    _FIX_APP,
    _WHY_APP,
    APP_SIDE,
    ASSIGNMENTS,
    CLEANUP,
    COMBINE,
    DELETE_TEST,
    GROUP_MISSING,
    GROUPS_TO_JOIN,
    JOIN,
    JOIN_TEST,
    LEAVE,
    LEAVE_ALL,
    MODE,
    NO_ASSIGNMENT,
    NO_GROUP,
    OPTIONS,
    ROLES_MAP,
    ROLES_SOURCE,
    UNKNOWN_ROLE,
    UNREVIEWED,
    WRONG_ROLE,
)
from .role_mapping import (
    CoverageIssue,
    DirectoryRoles,
    IssueKind,
    assess_coverage,
    distinct_role_groups,
    expected_app_roles,
)

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext
    from scim_readiness.clients.probe import AppUser
    from scim_readiness.config import RolesSection
    from scim_readiness.plugin.identities import TestIdentity
    from scim_readiness.provisioning.drivers import (
        DirectoryUser,
        GroupRef,
        Mode,
        ProvisioningDriver,
        RoleAssignments,
    )
    from scim_readiness.provisioning.roundtrip import Stepper


_Change = Callable[["_Memberships"], Awaitable[None]]


async def run(ctx: CheckContext) -> None:

    roles_cfg = ctx.config.roles
    if roles_cfg is None or not roles_cfg.map:
        ctx.findings.skipped(
            "Not run: no group → role map configured",
            why=ROLES_MAP.why,
            fix=ROLES_MAP.fix,
            code=ROLES_MAP.code,
        )
        return
    options = round_trip_options(ctx, ctx.findings, code=OPTIONS)
    if options is None:
        return
    mode, budget_s = options
    ctx.findings.metrics["mode"] = mode
    directory = await _scalekit_side(ctx, roles_cfg)
    if skipped_unconfigured_mode(
        ctx.config, ctx.findings, mode, code=MODE, part="App side not run"
    ):
        mark_essential(ctx.findings, _APP_SIDE)
        return
    await _app_side(ctx, roles_cfg, mode, directory, budget_s)


async def cleanup(ctx: CheckContext) -> None:

    await remove_test_objects(
        CheckParts(ctx).teardown(), ctx.findings, what="Test users and groups", code=CLEANUP
    )


# -- Scalekit side ----------------------------------------------------------------------------


async def _read_directory(ctx: CheckContext) -> DirectoryRoles:
    section = ctx.config.scalekit
    assert section.organization_id  # noqa: S101 - checked by caller
    gateway = await ctx.scalekit()
    if section.directory_id:
        directory = await gateway.get_directory(section.organization_id, section.directory_id)
    else:
        # Like the other checks: the organisation's first directory.
        directory = await find_directory(section, gateway, section.organization_id)
    roles = await gateway.list_roles()
    groups: dict[str, str] = {}
    async for page in gateway.iter_directory_groups(section.organization_id, directory.id):
        groups.update((group.id, group.display_name) for group in page)
    return DirectoryRoles(
        groups=groups,
        assignments=tuple((a.group_id, a.role_name) for a in directory.role_assignments),
        roles=frozenset(role.name for role in roles),
    )


_SCALEKIT_SIDE = "the directory's role assignments compared with roles.map"
_APP_SIDE = "a test user's roles observed in the app"


async def _scalekit_side(ctx: CheckContext, roles_cfg: RolesSection) -> DirectoryRoles | None:
    section = ctx.config.scalekit
    findings = ctx.findings
    if not (section.environment_url and section.client_id and section.client_secret):
        skipped_essential(
            findings,
            _SCALEKIT_SIDE,
            "Role assignments not checked: no Scalekit credentials configured",
            why="The directory's role assignments are read through the Scalekit API.",
            fix="Set scalekit.environment_url, client_id and client_secret.",
            code=ASSIGNMENTS.code,
        )
        return None
    if not section.organization_id:
        skipped_essential(
            findings,
            _SCALEKIT_SIDE,
            "Role assignments not checked: organisation not named",
            why="Role assignments belong to a directory of one organisation.",
            fix="Set scalekit.organization_id (and scalekit.directory_id if the organisation "
            "has several directories; the first is used otherwise).",
            code=ASSIGNMENTS.code,
        )
        return None
    try:
        directory = await _read_directory(ctx)
    except TargetUnavailable as exc:
        skipped_essential(
            findings,
            _SCALEKIT_SIDE,
            "Role assignments not checked: no directory found",
            observed=exc.reason,
            why=exc.why,
            fix="Set scalekit.directory_id, or create the organisation's directory.",
            code=ASSIGNMENTS.code,
        )
        return None
    except TargetError as exc:
        findings.errored(
            "Could not read the directory's role assignments",
            observed=str(exc),
            why="Without them the mapping in Scalekit cannot be compared with the config.",
            fix="Check the scalekit section (credentials, organisation and directory ids).",
            code=ASSIGNMENTS.code,
        )
        return None
    _record_coverage(ctx.findings, roles_cfg, directory)
    return directory


#: What each kind of coverage issue is recorded as: its code, title, expected and observed
#: (formatted with the issue's ``group``, ``role`` and ``expected_role``, and ``roles``, the
#: environment's roles).
_COVERAGE: dict[IssueKind, tuple[FindingCode, str, str, str]] = {
    IssueKind.GROUP_NOT_IN_DIRECTORY: (
        GROUP_MISSING,
        "Configured group {group!r} is not in the directory",
        "a directory group {group!r} mapped to {expected_role}",
        "no group with that display name",
    ),
    IssueKind.NO_ASSIGNMENT: (
        NO_ASSIGNMENT,
        "Configured group {group!r} has no role assignment",
        "{group!r} → {expected_role}",
        "the group exists but no role is assigned to it",
    ),
    IssueKind.WRONG_ROLE: (
        WRONG_ROLE,
        "Group {group!r} is assigned {role}, the config expects {expected_role}",
        "{group!r} → {expected_role}",
        "{group!r} → {role}",
    ),
    IssueKind.UNKNOWN_ROLE: (
        UNKNOWN_ROLE,
        "Group {group!r} is assigned role {role}, which does not exist",
        "one of the environment's roles: {roles}",
        "{group!r} → {role}",
    ),
    IssueKind.UNCONFIGURED_GROUP: (
        UNREVIEWED,
        "Directory maps group {group!r} to {role}; the config does not mention it",
        "every mapped group listed in roles.map",
        "{group!r} → {role}",
    ),
}


def _record_issue(
    findings: FindingRecorder, issue: CoverageIssue, directory: DirectoryRoles
) -> None:
    code, title, expected, observed = _COVERAGE[issue.kind]
    values = {
        "group": issue.group,
        "role": issue.role,
        "expected_role": issue.expected_role,
        "roles": ", ".join(sorted(directory.roles)),
    }
    findings.record(
        Status.FAIL if issue.is_failure else Status.WARN,
        title.format(**values),
        expected=expected.format(**values),
        observed=observed.format(**values),
        why=code.why,
        fix=code.fix,
        evidence={"group": issue.group, "role": issue.role, "expected_role": issue.expected_role},
        code=code.code,
    )


def _record_coverage(
    findings: FindingRecorder, roles_cfg: RolesSection, directory: DirectoryRoles
) -> None:
    coverage = assess_coverage(roles_cfg.map, directory)
    for issue in coverage.issues:
        _record_issue(findings, issue, directory)
    if coverage.covered and not any(issue.is_failure for issue in coverage.issues):
        findings.passed(
            f"Role assignments cover all {len(coverage.covered)} configured groups",
            observed=", ".join(f"{name} → {roles_cfg.map[name]}" for name in coverage.covered),
            code=ASSIGNMENTS.code,
        )


# -- app side ---------------------------------------------------------------------------------


def _role_assignments(
    ctx: CheckContext, roles_cfg: RolesSection, directory: DirectoryRoles | None
) -> tuple[RoleAssignments, list[tuple[str, str, str]]]:
    """Who grants what, and the mapped groups a test user can join: (id, name, role)."""

    if directory is not None:
        by_id = directory.role_by_group_id()
        candidates = [
            (gid, name, by_id[gid])
            for config_name in roles_cfg.map
            for gid in directory.groups_named(config_name)
            if gid in by_id
            for name in (config_name,)
        ]
        return RoleAssignments(by_id, directory.role_by_group_name()), candidates
    candidates = [
        (ctx.identities.group_id(f"cfg-{name}"), name, role) for name, role in roles_cfg.map.items()
    ]
    return RoleAssignments({}, dict(roles_cfg.map)), candidates


async def _app_side(
    ctx: CheckContext,
    roles_cfg: RolesSection,
    mode: Mode,
    directory: DirectoryRoles | None,
    budget_s: float,
) -> None:

    assignments, candidates = _role_assignments(ctx, roles_cfg, directory)
    if directory is None:
        ctx.findings.skipped(
            "Roles computed from the config map, not from Scalekit",
            observed="the directory's role assignments could not be read (see above)",
            why="The app side then checks the app against roles.map alone.",
            fix=ROLES_SOURCE.fix,
            code=ROLES_SOURCE.code,
        )
    chosen = distinct_role_groups(candidates)
    if not chosen:
        skipped_essential(
            ctx.findings,
            _APP_SIDE,
            "App side not run: no mapped group to join",
            why="None of the configured groups has a role assignment in the directory.",
            fix="Map at least one directory group to a role (see the findings above).",
            code=GROUPS_TO_JOIN.code,
        )
        return
    driver = CheckParts(ctx).driver(mode, assignments)
    try:
        groups = [await driver.existing_group(gid, name) for gid, name, _ in chosen]
    except ChangeRejected as exc:
        await driver.aclose()
        record_refused(
            ctx.findings,
            "resolve mapped groups",
            "change accepted",
            exc,
            why=_WHY_APP,
            fix=_FIX_APP,
            code=GROUPS_TO_JOIN,
        )
        return
    try:
        state = _Memberships(
            driver, roles_cfg, mode, assignments, groups, ctx.identities.user("roles")
        )
        await _membership_steps(ctx, state, budget_s)
    finally:
        await driver.aclose()


@dataclass
class _Memberships:
    """What the membership steps share: the driver, who grants what, the mapped groups and
    the test user (and test group) as the directory holds them."""

    driver: ProvisioningDriver
    roles_cfg: RolesSection
    mode: Mode
    assignments: RoleAssignments
    groups: list[GroupRef]
    identity: TestIdentity
    user: DirectoryUser | None = None
    test_group: GroupRef | None = None
    #: The roles the app should hold before the current step's change.
    before: frozenset[str] = frozenset()

    @property
    def test_user(self) -> DirectoryUser:
        assert self.user is not None  # noqa: S101 - set by step 1, before any other step
        return self.user

    @property
    def member_of(self) -> list[GroupRef]:
        return self.user.groups if self.user is not None else []

    def wanted(self) -> tuple[list[str], frozenset[str]]:
        """The roles events carry for the user's groups now, and the roles the app should
        then hold."""
        event_roles = self.assignments.roles_for(self.member_of)
        return event_roles, expected_app_roles(event_roles, self.roles_cfg)


_TEST_LABEL = "deleted"

_FIX_UNMOVED = (
    "Map groups so that each change moves the roles: distinct roles for the mapped groups, "
    "none of them roles.default_role (under combine: highest, ranked so that each join or "
    "leave changes the highest)."
)
_FIX_SCIM_TEST_GROUP = (
    "Nothing to fix in the app: Scalekit assigns no role to a group new to the directory, so "
    "the test group cannot move roles in scim mode; mode events observes these steps."
)


def _roles_settled(state: _Memberships, found: AppUser | None) -> bool:
    return found is not None and frozenset(found.roles) == state.wanted()[1]


def _roles_seen(state: _Memberships, found: AppUser | None) -> tuple[Status, str]:

    return Status.PASS, roles_text(found.roles if found else ())


NOT_OBSERVABLE = "the expected roles equal those before the change"


def _unchanged_roles(state: _Memberships) -> str | None:
    """Why a membership change cannot show in the app: it leaves the expected roles as they
    were (a group Scalekit assigns no role, a role the user already holds, a lower-ranked
    one under ``highest``), so the first look would pass whether or not the app processed it."""
    return NOT_OBSERVABLE if state.wanted()[1] == state.before else None


def _noting_before(change: _Change) -> _Change:
    async def noted(state: _Memberships) -> None:
        state.before = state.wanted()[1]
        await change(state)

    return noted


def _roles_expected(state: _Memberships) -> str:

    event_roles, want = state.wanted()
    return roles_text(want) + ("" if event_roles else " (in no mapped group)")


async def _create_user(state: _Memberships) -> None:
    state.user = await state.driver.create_user(state.identity)


def _join(group: GroupRef) -> _Change:
    async def change(state: _Memberships) -> None:
        await state.driver.add_member(group, state.test_user)

    return change


def _leave(group: GroupRef) -> _Change:
    async def change(state: _Memberships) -> None:
        await state.driver.remove_member(group, state.test_user)

    return change


async def _create_test_group(state: _Memberships) -> None:
    group = state.test_group = await state.driver.create_group(_TEST_LABEL)
    if state.mode == "events":
        # Acting as Scalekit, the checker maps its own group to the first group's role, as
        # an admin would, so that deleting it must take a role away.
        state.assignments.by_id[group.id] = state.assignments.role_of(state.groups[0]) or ""


async def _join_test_group(state: _Memberships) -> None:
    assert state.test_group is not None  # noqa: S101 - made by this step's prepare
    await state.driver.add_member(state.test_group, state.test_user)


async def _delete_test_group(state: _Memberships) -> None:
    assert state.test_group is not None  # noqa: S101 - made by the step before
    await state.driver.delete_group(state.test_group, [state.test_user])


async def _leave_all(state: _Memberships) -> None:
    for group in list(state.test_user.groups):
        await state.driver.remove_member(group, state.test_user)


class _Row(NamedTuple):
    """A membership step before numbering: what it is called, the state it expects (in
    words), its code, the change, and an untimed set-up before it."""

    name: str
    expected: str
    code: FindingCode
    change: _Change
    prepare: _Change | None = None


def _membership_table(
    first: GroupRef, second: GroupRef | None, combine: str, test_name: str, *, scim: bool
) -> tuple[list[Step[_Memberships]], list[Step[_Memberships]]]:
    """The membership steps, numbered, with the app's roles judged after each; joining and
    leaving a second group only when there is one. The second list holds the rows not made:
    in scim mode Scalekit gives the test group no role, so its steps cannot move roles and
    the checker does not create it."""
    first_name = first.display_name
    rows = [
        _Row("no mapped group", "the default role, or none", NO_GROUP, _create_user),
        _Row(f"join {first_name}", "the role of that group", JOIN, _join(first)),
    ]
    if second is not None:
        combined = f"roles combined ({combine})"
        rows.append(_Row(f"join {second.display_name}", combined, COMBINE, _join(second)))
        remaining = "only the remaining group's role"
        rows.append(_Row(f"leave {first_name}", remaining, LEAVE, _leave(first)))
    # The test group comes last, joined from no mapped group: its role (events mode) then
    # changes the user's roles and its deletion takes that role away, with one mapped group
    # as with two.
    rows += [
        _Row("leave every mapped group", "the default role, or none", LEAVE_ALL, _leave_all),
        _Row(
            "join test group",
            f"roles recalculated with {test_name}",
            JOIN_TEST,
            _join_test_group,
            prepare=_create_test_group,
        ),
        _Row(
            "delete test group",
            f"roles recalculated without {test_name}",
            DELETE_TEST,
            _delete_test_group,
        ),
    ]
    steps = [
        Step(
            f"{number}. {row.name}",
            row.expected,
            row.code,
            # The user's appearance shows the first step; a later one is seen only when its
            # change moves the expected roles.
            change=row.change if number == 1 else _noting_before(row.change),
            prepare=row.prepare,
            settled=_roles_settled,
            judge=_roles_seen,
            shows=_roles_expected,
            unobservable=None if number == 1 else _unchanged_roles,
        )
        for number, row in enumerate(rows, 1)
    ]
    made = len(steps) - 2 if scim else len(steps)
    return steps[:made], steps[made:]


async def _membership_steps(ctx: CheckContext, state: _Memberships, budget_s: float) -> None:

    groups = state.groups
    second = groups[1] if len(groups) > 1 else None
    test_name = ctx.identities.group_name(_TEST_LABEL)
    table, unmade = _membership_table(
        groups[0], second, state.roles_cfg.combine, test_name, scim=state.mode == "scim"
    )
    if second is None:
        ctx.findings.skipped(
            "Combining two mapped groups not tested: only one mapped group is available",
            why="Joining and leaving a second mapped group needs two groups with assignments.",
            fix="Map a second directory group to a role and list it in roles.map.",
            code=COMBINE.code,
        )
    reader = app_user_reader(ctx.probe, ctx.config.probe)
    stepper: Stepper[_Memberships] = Stepper(
        ctx.findings,
        ctx.clock,
        read=lambda state: reader.read(state.test_user),
        probing=ctx.probe is not None,
        budget_s=budget_s,
        refused_expected="change accepted",
    )

    async def on_failure(index: int, step: Step[_Memberships], outcome: StepOutcome) -> str | None:
        return _membership_failed(ctx.findings, index, step, outcome)

    try:
        await stepper.run(table, state, on_failure)
    finally:
        await _remove_test_user(state)
    for row in unmade:
        _record_unmade(ctx.findings, stepper, row)
    if stepper.stopped_at == 0:
        return  # the first look already said why nothing else was judged
    _conclude(ctx.findings, stepper, state.mode)


def _record_unmade(
    findings: FindingRecorder, stepper: Stepper[_Memberships], row: Step[_Memberships]
) -> None:
    """Put a row whose change would not move the expected roles, and so was not made, on the
    timeline as SKIP, "not observable", and among the stepper's unobservable rows."""
    observed = (
        f"not observable: {NOT_OBSERVABLE} (Scalekit assigns no role to a group new to the "
        "directory); not made"
    )
    findings.step(row.name, expected=row.expected, observed=observed, status=Status.SKIP)
    stepper.outcomes[row.name] = StepOutcome(
        Status.SKIP, observed, expected=row.expected, code=row.code.code
    )
    stepper.unobservable.append(row.name)


def _membership_failed(
    findings: FindingRecorder, index: int, step: Step[_Memberships], outcome: StepOutcome
) -> str | None:
    """What a failed step means for the rest: why they do not run, or None to go on."""

    if outcome.status is Status.ERROR:
        findings.errored(
            f"Step {step.name}: the probe could not read the app's state",
            expected=outcome.expected,
            observed=outcome.observed,
            fix="Check the probe section of the config against the app.",
            code=step.code.code,
        )
    if outcome.status is Status.ERROR:
        # What the app did was not seen: the later steps are not judged, and nothing FAILs.
        return f"the probe failed at step {step.name}"
    if index > 0:
        # Later steps build on this state; each would wait out its budget for nothing.
        return f"step {step.name} failed and later steps build on it"
    if outcome.user is not None:
        return None  # the user is there with other roles: the later steps still tell
    restate_last_step(
        findings,
        Status.SKIP,
        "not observed: the test user never appeared in the app (see user-lifecycle)",
    )
    skipped_essential(
        findings,
        _APP_SIDE,
        "App side not evaluated: the test user never appeared in the app",
        observed=describe_user(None),
        why="Roles cannot be observed on a user the app did not create; user creation itself "
        "is what user-lifecycle checks.",
        fix="Fix user creation first (see the user-lifecycle check).",
        code=APP_SIDE.code,
    )
    return "the test user never appeared in the app"


async def _remove_test_user(state: _Memberships) -> None:
    """Take the test user out of the test group and retire it; what fails here is left to
    ``cleanup``, which retries whatever the ledger still holds."""

    user, test_group = state.user, state.test_group
    if test_group is not None and user is not None and test_group in user.groups:
        try:
            await state.driver.delete_group(test_group, [user])
        except ChangeRejected:
            pass
    if user is not None:
        try:
            await retire_user(state.driver, user)
        except ChangeRejected:
            pass


def _conclude(findings: FindingRecorder, stepper: Stepper[_Memberships], mode: Mode) -> None:

    outcomes = stepper.outcomes
    unseen = set(stepper.unobservable)
    for name, outcome in outcomes.items():
        if name in unseen:
            findings.skipped(
                f"Step {name} not observable: {NOT_OBSERVABLE}",
                expected=outcome.expected,
                observed=outcome.observed,
                why="A change that leaves the expected roles as they were cannot show whether "
                "the app processed it; passing it would claim what was not observed.",
                fix=_FIX_SCIM_TEST_GROUP
                if mode == "scim" and outcome.code in (JOIN_TEST.code, DELETE_TEST.code)
                else _FIX_UNMOVED,
                evidence={"step": name, "mode": mode},
                code=outcome.code,
            )
        # An ERROR step has its own finding (the probe's reason): no roles were seen to differ.
        if outcome.status is Status.FAIL:
            findings.failed(
                f"Step {name}: the app's roles differ from the expected ones",
                expected=outcome.expected,
                observed=outcome.observed,
                why=_WHY_APP,
                fix=_FIX_APP,
                evidence={"step": name, "waited_s": round(outcome.elapsed_s, 3), "mode": mode},
                code=outcome.code,
            )
    seen = [outcome for name, outcome in outcomes.items() if name not in unseen]
    if stepper.finished and all(o.status is Status.PASS for o in seen):
        if len(seen) > 1:  # beyond the user's creation, a membership change was seen
            findings.passed(
                "The app's roles followed every observable membership change",
                observed=latencies_text(findings)
                + (f"; not observable: {', '.join(unseen)}" if unseen else ""),
                evidence={"propagation_ms": latency_summary(findings), "mode": mode},
                code=APP_SIDE.code,
            )
        else:
            skipped_essential(
                findings,
                _APP_SIDE,
                "App roles not observed: no membership change moved the expected roles",
                observed=f"not observable: {', '.join(unseen)}",
                why="Only a change that moves the expected roles shows that the app follows "
                "group changes.",
                fix="Map the groups of roles.map to roles other than roles.default_role.",
                code=APP_SIDE.code,
            )
    elif stepper.finished and all(o.status is Status.SKIP for o in outcomes.values()):
        record_not_observed(
            findings,
            "App roles not observed: no probe configured",
            why="Acceptance proves nothing about the roles the app applied.",
            code=APP_SIDE,
        )
        mark_essential(findings, _APP_SIDE)
    findings.metrics["propagation_ms"] = latency_summary(findings)
