"""The body of `data-model`: see the package's docstring for what it checks."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from scim_readiness.api import (
    FindingRecorder,
    ProbeError,
    ScalekitAuthError,
    ScalekitError,
    Severity,
    skipped_essential,
)
from scim_readiness.config import DataModelSection
from scim_readiness.plugin.target import TargetUnavailable, find_directory, find_organization

from . import (
    _DRIFT,
    APP_LISTED,
    ATTRIBUTES,
    COMPARED,
    EXTERNAL_ID,
    RECONCILED,
    TARGET,
    TENANT,
    Options,
)
from .directory_stream import has_attribute, iter_user_pages, lean_user
from .drift import Drift
from .reconcile import (
    OFFBOARDING_HOLES,
    AppRecord,
    AttributeCoverage,
    DirectoryRecord,
    Progress,
    Reconciler,
    ReconcileResult,
    RoleMapper,
)
from .streams import reconcile_streams

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext
    from scim_readiness.clients.probe import Probe

    from .directory_stream import LeanUser

_SAMPLES_SHOWN = 3
_APP_BATCH = 100


async def run(ctx: CheckContext) -> None:
    # Options are checked before anything is observed, so a typo is one clear message.
    opts = Options.of(ctx)
    probe = _listing_probe(ctx)
    if probe is None:
        return
    target = await _read_target(ctx)
    if target is None:
        return
    gateway, org, directory = target

    section = ctx.config.data_model or DataModelSection()
    expected_tenant = _expected_tenant(ctx, section.expected_tenant, org)
    org_id, directory_id = str(org.id), str(directory.id)
    mapper = await _role_mapper(ctx, gateway, org_id, directory)
    environment_roles = await _environment_roles(ctx.findings, gateway, opts.compare_roles)
    try:
        groups = await _directory_groups(gateway, org_id, directory_id, mapper)
    except ScalekitError as exc:
        ctx.findings.errored(
            "Directory groups could not be listed", observed=exc.message, code=RECONCILED.code
        )
        return
    coverage = AttributeCoverage(section.required_attributes)
    compared_roles = None
    if opts.compare_roles and environment_roles is not None:
        compared_roles = (mapper.known_roles | environment_roles) or None
    reconciler = Reconciler(
        expected_tenant=expected_tenant, known_roles=compared_roles, sample_limit=opts.samples
    )
    # The checker's own test identities (this run's, or left by an interrupted one) come and
    # go while mutating checks run; they are not the customer's data model.
    ignored = _TestIdentityFilter(ctx.identities.is_test_email)
    directory_pages = _directory_records(
        gateway, org_id, directory_id, mapper, coverage, ignored, groups.names
    )
    result = await _reconcile(
        ctx, reconciler, directory_pages, _app_records(probe, ignored), _total_users(directory)
    )
    if result is None:
        return
    ctx.findings.metrics.update(
        {
            "directory_users": result.directory_users,
            "app_users": result.app_users,
            "matched": result.matched,
            "peak_waiting_records": result.peak_waiting,
            "directory_groups": len(groups.names),
        }
    )
    _report_tenant(ctx.findings, result, expected_tenant)
    roles_left_out = None
    if not opts.compare_roles:
        roles_left_out = "roles not compared (option compare_roles is off)"
    elif environment_roles is None:
        roles_left_out = "roles not compared: the environment's roles could not be read"
    elif compared_roles is None:
        roles_left_out = "roles not compared (neither roles.map nor the environment names a role)"
    _report_drift(ctx.findings, result, directory_id, ignored, groups, roles_left_out)
    _report_attributes(ctx.findings, coverage)


def _listing_probe(ctx: CheckContext) -> Probe | None:
    """The probe, when it can list the app's users; None (recorded as SKIP) otherwise."""
    probe = ctx.probe
    if probe is None:
        ctx.findings.skipped(
            "Data model not compared",
            observed="no probe configured",
            why="Without a view of the app's users nothing can be compared with the directory; "
            "this is not a pass.",
            fix="Configure probe (http list_users URL or a command) so the app's users can be "
            "listed.",
            code=APP_LISTED.code,
        )
        return None
    if not _probe_can_list(ctx):
        ctx.findings.skipped(
            "Data model not compared",
            observed="the probe has no list_users setting",
            why="Reconciling a whole directory needs the app's users as a list; asking for "
            "them one by one would not scale and is not done.",
            fix="Set probe.http.list_users (a URL template with {cursor}) or "
            "probe.command.list_users.",
            code=APP_LISTED.code,
        )
        return None
    return probe


async def _read_target(ctx: CheckContext) -> tuple[Any, Any, Any] | None:
    """The Scalekit gateway, the organisation and its directory; None (recorded) when they
    cannot be read."""
    code = TARGET.code
    try:
        gateway = await ctx.scalekit()
        org = await find_organization(ctx.config.scalekit, gateway)
        directory = await find_directory(ctx.config.scalekit, gateway, str(org.id))
    except TargetUnavailable as exc:
        ctx.findings.skipped("Data model not compared", observed=exc.reason, why=exc.why, code=code)
        return None
    except ScalekitAuthError as exc:
        ctx.findings.skipped(
            "Data model not compared",
            observed=f"Scalekit refused the client credentials: {exc.message}",
            why="The environment check reports the credential problem.",
            code=code,
        )
        return None
    except ScalekitError as exc:
        ctx.findings.errored(
            "Organisation or directory could not be read", observed=exc.message, code=code
        )
        return None
    return gateway, org, directory


def _expected_tenant(ctx: CheckContext, configured: str | None, org: Any) -> str | None:
    """The app tenant the directory's users belong to: ``data_model.expected_tenant``, else
    the organisation's external id; FAIL when there is neither."""
    expected = configured or (getattr(org, "external_id", "") or None)
    if expected is None:
        ctx.findings.failed(
            "Organisation has no external id to map to a tenant",
            expected="the organisation's external_id is the app's tenant id",
            observed=f"{org.id} has no external_id and data_model.expected_tenant is not set",
            why=EXTERNAL_ID.why,
            fix=EXTERNAL_ID.fix,
            severity=Severity.HIGH,
            code=EXTERNAL_ID.code,
        )
    return expected


def _total_users(directory: Any) -> int | None:
    stats = getattr(directory, "stats", None)
    return _int_or_none(
        getattr(stats, "total_users", None) or getattr(directory, "total_users", None)
    )


async def _reconcile(
    ctx: CheckContext,
    reconciler: Reconciler,
    directory_pages: AsyncIterator[Sequence[DirectoryRecord]],
    app_pages: AsyncIterator[Sequence[AppRecord]],
    total: int | None,
) -> ReconcileResult | None:
    """Both streams through ``reconciler``, with progress lines; None (recorded as ERROR)
    when a side failed mid-way (what was read so far is not judged)."""

    progress = _progress_lines(ctx, total)
    try:
        return await reconcile_streams(
            reconciler,
            directory_pages=directory_pages,
            app_pages=app_pages,
            progress=progress,
            expected_total=total,
        )
    except ScalekitError as exc:
        ctx.findings.errored(
            "Directory users could not be listed",
            observed=f"after {reconciler.result.directory_users} users: {exc.message}",
            fix="Run again; if it persists, check Scalekit's status and the network.",
            code=RECONCILED.code,
        )
    except ProbeError as exc:
        ctx.findings.errored(
            "App users could not be listed through the probe",
            observed=f"after {reconciler.result.app_users} users: {exc.message}",
            fix="Check the probe's list_users setting and that the app is running.",
            code=RECONCILED.code,
        )
    return None


def _probe_can_list(ctx: CheckContext) -> bool:
    section = ctx.config.probe
    if section is None:
        return True  # a probe handed in by the caller (tests, plugins): let it answer
    chosen = section.http if section.kind == "http" else section.command
    return chosen is not None and bool(chosen.list_users)


# -- inputs -------------------------------------------------------------------------------------


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


async def _role_mapper(ctx: CheckContext, gateway: Any, org_id: str, directory: Any) -> RoleMapper:
    by_id: dict[str, str] = {}
    assignments = _field(directory, "role_assignments")
    if assignments is not None and not isinstance(assignments, list | tuple | dict):
        assignments = _field(assignments, "assignments")
    if isinstance(assignments, dict):
        by_id = {str(k): str(v) for k, v in assignments.items() if v}
    else:
        for item in assignments or ():
            group_id, role = _field(item, "group_id"), _field(item, "role_name")
            if group_id and role:
                by_id[str(group_id)] = str(role)
    roles = ctx.config.roles
    return RoleMapper(
        by_group_id=by_id,
        by_group_name=dict(roles.map) if roles else {},
        default_role=roles.default_role if roles else None,
        combine=roles.combine if roles else "all",
        precedence=roles.precedence if roles else (),
    )


async def _environment_roles(
    findings: FindingRecorder, gateway: Any, wanted: bool
) -> frozenset[str] | None:
    """Every role the environment defines: the roles the directory can grant. App roles
    outside this set (a locally granted "owner") are not compared. Empty when roles are not to
    be compared (``wanted`` False); None when they could not be read, recorded as a SKIP of the
    role comparison (comparing against a partial set would be a "no role drift" nobody
    observed)."""
    if not wanted:
        return frozenset()
    try:
        return frozenset(role.name for role in await gateway.list_roles())
    except ScalekitError as exc:
        code, _ = _DRIFT[Drift.ROLE_MISMATCH]
        findings.skipped(
            "Role drift not compared: the environment's roles could not be read",
            observed=f"the environment's roles could not be read: {exc.message}",
            why="The environment's roles say which app roles the directory grants; without "
            "them app and directory roles cannot be compared.",
            fix="Run again; if it persists, check the client credentials' access to roles and "
            "Scalekit's status.",
            code=code.code,
        )
        return None


class _Groups:
    """The directory's groups: names by id (a user's group list may carry ids only) and how
    many map to a role."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.mapped = 0


async def _directory_groups(
    gateway: Any, org_id: str, directory_id: str, mapper: RoleMapper
) -> _Groups:
    groups = _Groups()
    async for page in gateway.iter_directory_groups(org_id, directory_id, page_size=30):
        for group in page:
            group_id, name = str(_field(group, "id")), str(_field(group, "display_name") or "")
            groups.names[group_id] = name
            if mapper.roles_for([(group_id, name)]) - mapper.roles_for([]):
                groups.mapped += 1
    return groups


def _expected_roles(
    user: LeanUser, mapper: RoleMapper, group_names: Mapping[str, str], use_mapper: bool
) -> frozenset[str] | None:
    # The roles Scalekit itself reports for a user (what its events carry) are the truth the
    # app must mirror; the group→role map only stands in when the directory does not say.
    # Whether the map itself is right is the group-roles check's question, not this one's.
    if user.roles is not None:
        return mapper.finalise(user.roles)
    if not use_mapper:
        return None
    return mapper.roles_for(
        (group_id, name or group_names.get(group_id, "")) for group_id, name in user.groups
    )


class _TestIdentityFilter:
    def __init__(self, is_test_email: Callable[[str], bool]) -> None:
        self.is_test_email = is_test_email
        self.directory = 0
        self.app = 0


async def _directory_records(
    gateway: Any,
    org_id: str,
    directory_id: str,
    mapper: RoleMapper,
    coverage: AttributeCoverage,
    ignored: _TestIdentityFilter,
    group_names: Mapping[str, str],
) -> AsyncIterator[Sequence[DirectoryRecord]]:

    use_mapper = mapper.active
    finalise = mapper.finalise
    is_test_email = ignored.is_test_email
    required = coverage.required
    # Runs once per directory user: names bound to locals, the common case inline.
    async for page in iter_user_pages(gateway, org_id, directory_id):
        records: list[DirectoryRecord] = []
        append = records.append
        for message in page:
            user = lean_user(message)
            if is_test_email(user.email):
                ignored.directory += 1
                continue
            if required:
                coverage.add(functools.partial(has_attribute, message))
            append(
                DirectoryRecord(
                    user.id,
                    user.email,
                    user.active,
                    finalise(user.roles)
                    if user.roles is not None
                    else _expected_roles(user, mapper, group_names, use_mapper),
                )
            )
        yield records


async def _app_records(
    probe: Probe, ignored: _TestIdentityFilter
) -> AsyncIterator[Sequence[AppRecord]]:

    batch: list[AppRecord] = []
    # 100,000 app users hold a handful of role combinations: one frozenset for each.
    role_sets: dict[tuple[str, ...], frozenset[str]] = {}
    is_test_email = ignored.is_test_email
    async for user in probe.list_users():
        if is_test_email(user.email):
            ignored.app += 1
            continue
        roles = role_sets.get(user.roles)
        if roles is None:
            roles = frozenset(user.roles)
            if len(role_sets) < 4096:
                role_sets[user.roles] = roles
        batch.append(
            AppRecord(user.id, user.directory_user_id, user.email, user.active, roles, user.tenant)
        )
        if len(batch) >= _APP_BATCH:
            yield batch
            batch = []
            # Directory paging is the critical path (one call after another): let its next
            # request go out before this side parses more.
            await asyncio.sleep(0)
    if batch:
        yield batch


def _progress_lines(ctx: CheckContext, total: int | None) -> Progress | None:
    """Progress on stderr while a large directory is read, only when stderr is a terminal
    (option ``progress``).

    Plain lines every few seconds rather than a live bar of its own: the runner already keeps
    a live status line on the terminal, and Rich prints lines written to stderr above it,
    where two live displays would overwrite each other.
    """
    opts = Options.of(ctx)
    wanted = opts.progress
    if wanted is False or (wanted == "auto" and not sys.stderr.isatty()):
        return None
    interval_s = opts.progress_interval_s
    clock = ctx.clock
    last = [clock.monotonic()]

    def update(done: int, expected: int | None) -> None:
        now = clock.monotonic()
        if now - last[0] < interval_s:
            return
        last[0] = now
        share = f" ({done / expected:.0%})" if expected else ""
        of = f" of {expected:,}" if expected else ""
        print(f"data-model: {done:,}{of} directory users read{share}", file=sys.stderr, flush=True)

    return update


# -- findings -----------------------------------------------------------------------------------


def _report_tenant(
    findings: FindingRecorder, result: ReconcileResult, expected: str | None
) -> None:
    if expected is None:
        return
    if result.matched == 0:
        findings.skipped(
            "Tenant mapping not confirmed",
            observed="no app user is linked to a directory user, so no tenant could be compared",
            why="The reconciliation findings say why users are missing.",
            code=TENANT.code,
        )
        return
    if not result.tenants_seen:
        findings.warned(
            "Tenant mapping not confirmed: the probe reports no tenant",
            expected=f"app users of this directory belong to tenant {expected!r}",
            observed=f"{result.matched} matched users, none with a tenant",
            fix="Expose the user's tenant in the probe (probe.*.fields.tenant).",
            code=TENANT.code,
        )
        return
    wrong = result.counts[Drift.TENANT_MISMATCH]
    if wrong:
        seen = ", ".join(
            f"{tenant!r}: {count}"
            for tenant, count in sorted(result.tenants_seen.items(), key=lambda kv: -kv[1])[:5]
        )
        findings.failed(
            "App files the directory's users under another tenant",
            expected=f"tenant {expected!r} (the organisation's external id)",
            observed=f"{wrong} of {result.matched} matched users in another tenant ({seen})",
            why="Users land in the wrong customer's workspace: they see another tenant's data, "
            "or their own admins cannot manage them.",
            fix="Look the tenant up by the event's organization_id → organisation.external_id, "
            "never use the Scalekit organisation id itself as the tenant.",
            severity=Severity.CRITICAL,
            evidence={
                "tenants_seen": dict(result.tenants_seen),
                "samples": [s._asdict() for s in result.samples[Drift.TENANT_MISMATCH]],
            },
            code=TENANT.code,
        )
        return
    findings.passed(
        "Organisation maps to the app's tenant",
        expected=f"tenant {expected!r}",
        observed=f"all {result.matched} matched users are in tenant {expected!r}",
        code=TENANT.code,
    )


def _drift_severity() -> dict[Any, Severity]:
    # Offboarding holes leave access behind; an unlinked user is present, only fragile.
    return {
        **dict.fromkeys(OFFBOARDING_HOLES, Severity.CRITICAL),
        Drift.NOT_LINKED_IN_APP: Severity.MEDIUM,
    }


def _drift_summary(result: ReconcileResult, ignored: _TestIdentityFilter, groups: _Groups) -> str:
    summary = (
        f"{result.directory_users} directory users ({result.directory_active} active), "
        f"{result.app_users} app users read, {result.matched} matched; "
        f"{len(groups.names)} groups, {groups.mapped} mapped to roles"
    )
    if result.unlinked_app_users:
        summary += f", {result.unlinked_app_users} app users not linked to any directory user"
    if ignored.directory or ignored.app:
        summary += (
            f"; scim-readiness test identities left out ({ignored.directory} in the directory, "
            f"{ignored.app} in the app)"
        )
    if result.out_of_scope_app_users:
        summary += f", {result.out_of_scope_app_users} of other tenants ignored"
    return summary


_EVERY_USER = "every directory user reconciles with the app"


def _report_drift(
    findings: FindingRecorder,
    result: ReconcileResult,
    directory_id: str,
    ignored: _TestIdentityFilter,
    groups: _Groups,
    roles_left_out: str | None = None,
) -> None:
    """The drift findings; ``roles_left_out`` says why roles were not compared, so a PASS
    does not claim role drift it never looked for."""
    summary = _drift_summary(result, ignored, groups)
    findings.metrics["summary"] = summary
    any_drift = False
    for drift in Drift:
        if drift is Drift.TENANT_MISMATCH:
            continue  # reported with the tenant mapping
        count = result.counts[drift]
        if not count:
            continue
        any_drift = True
        code, title = _DRIFT[drift]
        samples = result.samples[drift]
        shown = "; ".join(
            f"{s.directory_user_id} <{s.email}>: {s.detail}" for s in samples[:_SAMPLES_SHOWN]
        )
        more = f" (+{count - _SAMPLES_SHOWN} more)" if count > _SAMPLES_SHOWN else ""
        record = findings.warned if drift is Drift.NOT_LINKED_IN_APP else findings.failed
        record(
            f"{title}: {count}",
            expected="0",
            observed=f"{count} — e.g. {shown}{more}",
            why=code.why,
            fix=code.fix,
            severity=_drift_severity().get(drift, Severity.HIGH),
            code=code.code,
            evidence={
                "count": count,
                "directory_id": directory_id,
                "samples": [s._asdict() for s in samples],
            },
        )
    if not any_drift:
        _report_reconciled(findings, result, summary, roles_left_out)
    else:
        findings.metrics["drift"] = {d.value: c for d, c in result.counts.items() if c}
    if result.unlinked_active_samples:
        findings.metrics["unlinked_active_samples"] = list(result.unlinked_active_samples)


def _report_reconciled(
    findings: FindingRecorder,
    result: ReconcileResult,
    summary: str,
    roles_left_out: str | None,
) -> None:
    """No drift found: a PASS naming what was looked for, or, with no directory user
    compared, the essential assertion not observed (an app user the empty directory lacks
    would have been drift)."""
    if result.directory_users == 0:
        skipped_essential(
            findings,
            _EVERY_USER,
            "Reconciliation not observed: no directory users to compare",
            expected="at least one directory user compared with the app",
            observed=summary,
            why=COMPARED.why,
            fix=COMPARED.fix,
            code=COMPARED.code,
        )
        return
    looked_for = "no missing, unlinked, extra, inactive, email or role drift"
    if roles_left_out is not None:
        looked_for = "no missing, unlinked, extra, inactive or email drift"
        summary = f"{summary}; {roles_left_out}"
    findings.passed(
        "Every directory user reconciles with the app",
        expected=looked_for,
        observed=summary,
        code=RECONCILED.code,
    )


def _report_attributes(findings: FindingRecorder, coverage: AttributeCoverage) -> None:
    if not coverage.required:
        return
    if coverage.users == 0:
        findings.skipped(
            "Required attributes not checked",
            observed="the directory has no users",
            code=ATTRIBUTES.code,
        )
        return
    lacking = [
        (name, coverage.lacking[name]) for name in coverage.required if coverage.lacking[name]
    ]
    if not lacking:
        findings.passed(
            "Every directory user has the attributes the app requires",
            expected=", ".join(coverage.required),
            observed=f"all present on {coverage.users} users",
            code=ATTRIBUTES.code,
        )
        return
    for name, count in lacking:
        share = count / coverage.users
        findings.warned(
            f"{share:.1%} of directory users lack {name!r}",
            expected=f"{name!r} on every user (data_model.required_attributes)",
            observed=f"{count} of {coverage.users} users lack it",
            why="Users without it are created incomplete, or refused by the app.",
            fix=f"Map {name!r} in the IdP's SCIM attribute mappings (or the directory's "
            "attribute mappings), or give the app a default.",
            evidence={"attribute": name, "lacking": count, "users": coverage.users},
            code=ATTRIBUTES.code,
        )
