"""`group-roles`: group-based role assignment (checklist item 5).

Two sides:

* **Scalekit**: the directory's role assignments must cover every group of the config's
  ``roles.map`` with the configured role, and each assigned role must exist in the
  environment. An assignment for a group the config does not name is a warning.
* **The app** (through the probe): a test user, driven through signed events (option ``mode:
  events``) or the directory's SCIM endpoint (``mode: scim``), is created in no
  mapped group, joins a mapped group, joins a second one, leaves the first, joins and loses a
  test group that is then deleted, and finally leaves every mapped group. The mapped groups
  are the directory's own (in scim mode the test user really joins and leaves them); the test
  group is the only group created, and it and the user are removed at the end. After each change
  its roles in the app must be those the config describes: every role of its groups
  (``roles.combine: all``) or the highest by ``roles.precedence`` (``highest``), and
  ``roles.default_role`` (or none) in no mapped group.

In events mode the checker computes ``roles`` as Scalekit would from the directory's role
assignments; when those cannot be read it falls back to the config map and says so. The test
group stands in, in events mode, for a group mapped to the first group's role, so that its
deletion must take a role away; in scim mode Scalekit decides (a new group has no role).

Essential assertions (PASS needs every one observed; one that could not be is SKIP):
  * the directory's role assignments were read and compared with ``roles.map``;
  * the app side ran: a test user's roles were seen in the app after the membership changes.

Statuses:
  PASS  assignments match the config and every app-side step showed the expected roles.
  WARN  the directory maps groups the config does not mention.
  FAIL  a configured group lacks an assignment, is assigned another or a non-existent role,
        or a step's roles in the app differed from the expected ones (the step is named).
  SKIP  read-only run, no roles section, or an essential assertion not observable (no
        Scalekit credentials or organisation, no probe, no mapped group, or the test user
        never appeared: see user-lifecycle), whatever else passed.
  ERROR Scalekit, the SCIM endpoint or the probe failed, so a side could not be evaluated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scim_readiness.api import (
    CheckInfo,
    Need,
    ReadOnly,
    Status,
    mark_essential,
    skipped_essential,
)
from scim_readiness.plugin.options import RoundTripOptions

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext
    from scim_readiness.clients.probe import AppUser
    from scim_readiness.config import RolesSection
    from scim_readiness.provisioning.drivers import (
        ChangeRejected,
        DirectoryUser,
        GroupRef,
        Mode,
        ProvisioningDriver,
        RoleAssignments,
    )
    from scim_readiness.provisioning.roundtrip import StepOutcome

    from .role_mapping import DirectoryRoles

CHECK = CheckInfo(
    id="group-roles",
    title="Group-based role assignment",
    checklist_item=5,
    options=RoundTripOptions,
    needs=(Need.ROLES,),
    mutates=True,
    sharing="shared",  # judges only its own test user and test groups
    # Its directory-side comparison alone cannot show the app follows group changes.
    read_only=ReadOnly.NONE,
    docs_url="https://docs.scalekit.com/guides/integrations/scim-integrations/",
    description="Compares the directory's role assignments with the config's group → role map, "
    "then moves a test user between mapped groups and watches its roles in the app.",
    default_timeout_s=300.0,
)

_WHY_APP = (
    "Roles decide what a user may do; an app that does not follow group changes grants too "
    "much (a leaver keeps admin) or too little (a new admin is locked out)."
)
_FIX_APP = (
    "On user_created and user_updated, replace the user's roles with data.roles (all of them, "
    "or the highest by your precedence); with no role, apply your default role."
)


async def run(ctx: CheckContext) -> None:
    from scim_readiness.provisioning.roundtrip import (
        round_trip_options,
        skipped_unconfigured_mode,
    )

    roles_cfg = ctx.config.roles
    if roles_cfg is None or not roles_cfg.map:
        ctx.findings.skipped(
            "Not run: no group → role map configured",
            why="Without roles.map there is nothing to compare assignments or app roles with.",
            fix="Add roles.map (directory group display name → role) to the config.",
        )
        return
    options = round_trip_options(ctx)
    if options is None:
        return
    mode, budget_s = options
    ctx.findings.metrics["mode"] = mode
    directory = await _scalekit_side(ctx, roles_cfg)
    if skipped_unconfigured_mode(ctx, mode, part="App side not run"):
        mark_essential(ctx.findings, _APP_SIDE)
        return
    await _app_side(ctx, roles_cfg, mode, directory, budget_s)


async def cleanup(ctx: CheckContext) -> None:
    from scim_readiness.provisioning.roundtrip import remove_test_objects

    await remove_test_objects(ctx, what="Test users and groups")


# -- Scalekit side ----------------------------------------------------------------------------


async def _read_directory(ctx: CheckContext) -> DirectoryRoles:
    from scim_readiness.plugin.target import find_directory

    from .role_mapping import DirectoryRoles

    section = ctx.config.scalekit
    assert section.organization_id  # noqa: S101 - checked by caller
    gateway = await ctx.scalekit()
    if section.directory_id:
        directory = await gateway.get_directory(section.organization_id, section.directory_id)
    else:
        # Like the other checks: the organisation's first directory.
        directory = await find_directory(ctx, gateway, section.organization_id)
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
    from scim_readiness.api import TargetError
    from scim_readiness.plugin.target import TargetUnavailable

    section = ctx.config.scalekit
    if not (section.environment_url and section.client_id and section.client_secret):
        skipped_essential(
            ctx.findings,
            _SCALEKIT_SIDE,
            "Role assignments not checked: no Scalekit credentials configured",
            why="The directory's role assignments are read through the Scalekit API.",
            fix="Set scalekit.environment_url, client_id and client_secret.",
        )
        return None
    if not section.organization_id:
        skipped_essential(
            ctx.findings,
            _SCALEKIT_SIDE,
            "Role assignments not checked: organisation not named",
            why="Role assignments belong to a directory of one organisation.",
            fix="Set scalekit.organization_id (and scalekit.directory_id if the organisation "
            "has several directories; the first is used otherwise).",
        )
        return None
    try:
        directory = await _read_directory(ctx)
    except TargetUnavailable as exc:
        skipped_essential(
            ctx.findings,
            _SCALEKIT_SIDE,
            "Role assignments not checked: no directory found",
            observed=exc.reason,
            why=exc.why,
            fix="Set scalekit.directory_id, or create the organisation's directory.",
        )
        return None
    except TargetError as exc:
        ctx.findings.errored(
            "Could not read the directory's role assignments",
            observed=str(exc),
            why="Without them the mapping in Scalekit cannot be compared with the config.",
            fix="Check the scalekit section (credentials, organisation and directory ids).",
        )
        return None
    _record_coverage(ctx, roles_cfg, directory)
    return directory


def _record_coverage(ctx: CheckContext, roles_cfg: RolesSection, directory: DirectoryRoles) -> None:
    from .role_mapping import IssueKind, assess_coverage

    coverage = assess_coverage(roles_cfg.map, directory)
    fix_dashboard = (
        "In the Scalekit dashboard (or the admin portal), map the directory group to the role "
        "under the directory's role assignments, or correct roles.map in the config."
    )
    for issue in coverage.issues:
        evidence = {"group": issue.group, "role": issue.role, "expected_role": issue.expected_role}
        if issue.kind is IssueKind.GROUP_NOT_IN_DIRECTORY:
            ctx.findings.failed(
                f"Configured group {issue.group!r} is not in the directory",
                expected=f"a directory group {issue.group!r} mapped to {issue.expected_role}",
                observed="no group with that display name",
                why="Users cannot get this role from their groups if the group is not synced.",
                fix="Assign the group to the app in the IdP so it is pushed to the directory, "
                "or correct the group name in roles.map.",
                evidence=evidence,
            )
        elif issue.kind is IssueKind.NO_ASSIGNMENT:
            ctx.findings.failed(
                f"Configured group {issue.group!r} has no role assignment",
                expected=f"{issue.group!r} → {issue.expected_role}",
                observed="the group exists but no role is assigned to it",
                why="Scalekit sends no role for its members, so they get the default role (or "
                "none) instead of the one the config promises.",
                fix=fix_dashboard,
                evidence=evidence,
            )
        elif issue.kind is IssueKind.WRONG_ROLE:
            ctx.findings.failed(
                f"Group {issue.group!r} is assigned {issue.role}, the config expects "
                f"{issue.expected_role}",
                expected=f"{issue.group!r} → {issue.expected_role}",
                observed=f"{issue.group!r} → {issue.role}",
                why="Members get a different role from the one the app's owners intended.",
                fix=fix_dashboard,
                evidence=evidence,
            )
        elif issue.kind is IssueKind.UNKNOWN_ROLE:
            ctx.findings.failed(
                f"Group {issue.group!r} is assigned role {issue.role}, which does not exist",
                expected=f"one of the environment's roles: {', '.join(sorted(directory.roles))}",
                observed=f"{issue.group!r} → {issue.role}",
                why="Events carry a role name the app cannot know about.",
                fix="Create the role in the environment or assign an existing one.",
                evidence=evidence,
            )
        else:
            ctx.findings.warned(
                f"Directory maps group {issue.group!r} to {issue.role}; the config does not "
                "mention it",
                expected="every mapped group listed in roles.map",
                observed=f"{issue.group!r} → {issue.role}",
                why="Roles granted by groups nobody reviewed for this app are easy to miss.",
                fix="Add the group to roles.map if the mapping is intended, or remove it.",
                evidence=evidence,
            )
    if coverage.covered and not any(issue.is_failure for issue in coverage.issues):
        ctx.findings.passed(
            f"Role assignments cover all {len(coverage.covered)} configured groups",
            observed=", ".join(f"{name} → {roles_cfg.map[name]}" for name in coverage.covered),
        )


# -- app side ---------------------------------------------------------------------------------


def _role_assignments(
    ctx: CheckContext, roles_cfg: RolesSection, directory: DirectoryRoles | None
) -> tuple[RoleAssignments, list[tuple[str, str, str]]]:
    """Who grants what, and the mapped groups a test user can join: (id, name, role)."""
    from scim_readiness.provisioning.drivers import RoleAssignments

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
    from scim_readiness.provisioning.drivers import ChangeRejected, make_driver

    from .role_mapping import distinct_role_groups

    assignments, candidates = _role_assignments(ctx, roles_cfg, directory)
    if directory is None:
        ctx.findings.skipped(
            "Roles computed from the config map, not from Scalekit",
            observed="the directory's role assignments could not be read (see above)",
            why="The app side then checks the app against roles.map alone.",
            fix="Configure the scalekit section so assignments are read from the directory.",
        )
    chosen = distinct_role_groups(candidates)
    if not chosen:
        skipped_essential(
            ctx.findings,
            _APP_SIDE,
            "App side not run: no mapped group to join",
            why="None of the configured groups has a role assignment in the directory.",
            fix="Map at least one directory group to a role (see the findings above).",
        )
        return
    driver = make_driver(ctx, mode, assignments)
    try:
        groups = [await driver.existing_group(gid, name) for gid, name, _ in chosen]
    except ChangeRejected as exc:
        await driver.aclose()
        _refused(ctx, "resolve mapped groups", exc)
        return
    try:
        await _membership_steps(ctx, roles_cfg, driver, mode, assignments, groups, budget_s)
    finally:
        await driver.aclose()


async def _membership_steps(
    ctx: CheckContext,
    roles_cfg: RolesSection,
    driver: ProvisioningDriver,
    mode: Mode,
    assignments: RoleAssignments,
    groups: list[GroupRef],
    budget_s: float,
) -> None:
    from scim_readiness.provisioning.drivers import ChangeRejected, retire_user
    from scim_readiness.provisioning.roundtrip import (
        app_user_lookup,
        describe_user,
        latencies_text,
        latency_summary,
        observe_step,
        record_not_observed,
        record_not_run,
        restate_last_step,
        roles_text,
    )

    from .role_mapping import expected_app_roles

    identity = ctx.identities.user("roles")
    first = groups[0]
    second = groups[1] if len(groups) > 1 else None
    test_label = "deleted"
    test_name = ctx.identities.group_name(test_label)
    steps: list[tuple[str, str]] = [
        ("no mapped group", "the default role, or none"),
        (f"join {first.display_name}", "the role of that group"),
    ]
    if second is not None:
        steps.append((f"join {second.display_name}", f"roles combined ({roles_cfg.combine})"))
        steps.append((f"leave {first.display_name}", "only the remaining group's role"))
    steps += [
        ("join test group", f"roles recalculated with {test_name}"),
        ("delete test group", f"roles recalculated without {test_name}"),
        ("leave every mapped group", "the default role, or none"),
    ]
    plan = [(f"{number}. {name}", expected) for number, (name, expected) in enumerate(steps, 1)]
    if second is None:
        ctx.findings.skipped(
            "Combining two mapped groups not tested: only one mapped group is available",
            why="Joining and leaving a second mapped group needs two groups with assignments.",
            fix="Map a second directory group to a role and list it in roles.map.",
        )
    failures: list[tuple[str, str, str, float]] = []
    finished = False
    user: DirectoryUser | None = None
    outcomes: list[StepOutcome] = []

    async def lookup() -> AppUser | None:
        assert user is not None  # noqa: S101 - set before the first observation
        return await app_user_lookup(ctx, user)()

    async def observe(index: int, started: float, member_of: list[GroupRef]) -> StepOutcome:
        step, _ = plan[index]
        event_roles = assignments.roles_for(member_of)
        want = expected_app_roles(event_roles, roles_cfg)
        expected = roles_text(want) + ("" if event_roles else " (in no mapped group)")

        def judge(found: AppUser | None) -> tuple[Status, str]:
            return Status.PASS, roles_text(found.roles if found else ())

        outcome = await observe_step(
            ctx,
            step=step,
            expected=expected,
            lookup=lookup,
            settled=lambda found: found is not None and frozenset(found.roles) == want,
            judge=judge,
            started_at=started,
            budget_s=budget_s,
        )
        outcomes.append(outcome)
        if outcome.status in (Status.FAIL, Status.ERROR):
            failures.append((step, expected, outcome.observed, outcome.elapsed_s))
            if outcome.status is Status.ERROR:
                ctx.findings.errored(
                    f"Step {step}: the probe could not read the app's state",
                    expected=expected,
                    observed=outcome.observed,
                    fix="Check the probe section of the config against the app.",
                )
            if index > 0:
                # Later steps build on this state; each would wait out its budget for nothing.
                raise _StopSteps(index)
        return outcome

    index = 0
    test_group: GroupRef | None = None
    try:
        started = ctx.clock.monotonic()
        user = await driver.create_user(identity)
        first_look = await observe(index, started, [])
        if first_look.status is Status.ERROR:
            record_not_run(ctx, plan[1:], "the probe could not read the app's state")
            return
        if first_look.status is Status.FAIL and first_look.user is None:
            failures.clear()
            restate_last_step(
                ctx,
                Status.SKIP,
                "not observed: the test user never appeared in the app (see user-lifecycle)",
            )
            skipped_essential(
                ctx.findings,
                _APP_SIDE,
                "App side not evaluated: the test user never appeared in the app",
                observed=describe_user(None),
                why="Roles cannot be observed on a user the app did not create; user creation "
                "itself is what user-lifecycle checks.",
                fix="Fix user creation first (see the user-lifecycle check).",
            )
            record_not_run(ctx, plan[1:], "the test user never appeared in the app")
            return
        index += 1
        started = ctx.clock.monotonic()
        await driver.add_member(first, user)
        await observe(index, started, user.groups)
        if second is not None:
            index += 1
            started = ctx.clock.monotonic()
            await driver.add_member(second, user)
            await observe(index, started, user.groups)
            index += 1
            started = ctx.clock.monotonic()
            await driver.remove_member(first, user)
            await observe(index, started, user.groups)
        index += 1
        test_group = await driver.create_group(test_label)
        if mode == "events":
            # Acting as Scalekit, the checker maps its own group to the first group's role,
            # as an admin would, so that deleting it must take a role away.
            assignments.by_id[test_group.id] = assignments.role_of(first) or ""
        started = ctx.clock.monotonic()
        await driver.add_member(test_group, user)
        await observe(index, started, user.groups)
        index += 1
        started = ctx.clock.monotonic()
        await driver.delete_group(test_group, [user])
        await observe(index, started, user.groups)
        index += 1
        started = ctx.clock.monotonic()
        for group in list(user.groups):
            await driver.remove_member(group, user)
        await observe(index, started, user.groups)
        finished = True
    except ChangeRejected as exc:
        _refused(ctx, plan[index][0], exc)
        record_not_run(ctx, plan[index + 1 :], f"step {plan[index][0]} could not be sent")
    except _StopSteps as stop:
        record_not_run(
            ctx,
            plan[stop.index + 1 :],
            f"step {plan[stop.index][0]} failed and later steps build on it",
        )
    finally:
        if test_group is not None and user is not None and test_group in user.groups:
            try:
                await driver.delete_group(test_group, [user])
            except ChangeRejected:
                pass  # cleanup() retries whatever the ledger still holds
        if user is not None:
            try:
                await retire_user(driver, user)
            except ChangeRejected:
                pass  # cleanup() retries whatever the ledger still holds
    for step, expected, observed, waited in failures:
        ctx.findings.failed(
            f"Step {step}: the app's roles differ from the expected ones",
            expected=expected,
            observed=observed,
            why=_WHY_APP,
            fix=_FIX_APP,
            evidence={"step": step, "waited_s": round(waited, 3), "mode": mode},
        )
    if finished and all(o.status is Status.PASS for o in outcomes):
        ctx.findings.passed(
            "The app's roles followed every membership change",
            observed=latencies_text(ctx),
            evidence={"propagation_ms": latency_summary(ctx), "mode": mode},
        )
    elif finished and all(o.status is Status.SKIP for o in outcomes):
        record_not_observed(
            ctx,
            "App roles not observed: no probe configured",
            why="Acceptance proves nothing about the roles the app applied.",
        )
        mark_essential(ctx.findings, _APP_SIDE)
    ctx.findings.metrics["propagation_ms"] = latency_summary(ctx)


class _StopSteps(Exception):
    """Control flow: a step failed, so the steps built on it are not run."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def _refused(ctx: CheckContext, step: str, exc: ChangeRejected) -> None:
    from scim_readiness.provisioning.roundtrip import record_refused

    record_refused(ctx, step, "change accepted", exc, why=_WHY_APP, fix=_FIX_APP)
