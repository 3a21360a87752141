"""`data-model`: Alignment with the app's user and organisation model (checklist item 7).

Maps the Scalekit organisation to the app's tenant (its ``external_id``, or
``data_model.expected_tenant``), then reconciles the whole directory with the app: every
directory user and group is streamed from the Directory API (30 per page) while the app's
users are streamed from the probe's list endpoint, and a streaming join keyed on the
directory user id reports, with counts and a few samples, users missing in the app, active
app users whose directory user is gone (an offboarding hole), active-state, email, role and
tenant mismatches. Nothing is requested per user, and memory holds one compact tuple per
user still waiting for its partner. Finally the share of directory users lacking each
required attribute.

Statuses:

* PASS: the tenant maps, every user reconciles, required attributes are present.
* WARN: some users lack a required attribute; the probe does not report tenants.
* FAIL: the organisation has no external id / the app files users under another tenant;
  any drift between directory and app (missing, extra active, active, email or role
  mismatch, two app users for one directory user).
* ERROR: Scalekit or the probe failed mid-way (what was read so far is not judged).
* SKIP: no probe configured (or one without ``list_users``), or no organisation to read.

Roles are compared with the roles Scalekit reports for each user (what its events carry);
the config's group→role map (with ``default_role`` and ``precedence``) stands in only when the
directory reports none. Whether the map itself is right is group-roles' question. The
checker's own test identities are left out: mutating checks create and remove them mid-run.

Options (``checks.data-model.options``): see :class:`Options`.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from scim_readiness.api import (
    CheckInfo,
    CheckOptions,
    FindingCode,
    FindingRecorder,
    Need,
    ProbeError,
    ScalekitAuthError,
    ScalekitError,
    Severity,
    option,
)
from scim_readiness.plugin.target import TargetUnavailable, find_directory, find_organization

from .reconcile import (
    OFFBOARDING_HOLES,
    AppRecord,
    AttributeCoverage,
    DirectoryRecord,
    Drift,
    Progress,
    Reconciler,
    ReconcileResult,
    RoleMapper,
)

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext
    from scim_readiness.clients.probe import Probe

    from .directory_stream import LeanUser


class Options(CheckOptions):
    compare_roles: bool = option(default=True, description="compare each user's roles")
    samples: int = option(default=5, description="examples listed per kind of mismatch", ge=0)
    progress: bool | Literal["auto"] = option(
        default="auto", description="progress lines on stderr (auto: when it is a terminal)"
    )
    progress_interval_s: float = option(
        default=2.0, description="seconds between progress lines", ge=0
    )


_DOCS = "https://docs.scalekit.com/directory/guides/user-provisioning-basics/"

APP_LISTED = FindingCode(
    "DMD001",
    "The probe can list the app's users",
    "Without a list of the app's users nothing can be compared with the directory; asking "
    "for them one by one would not scale.",
    "Configure probe with list_users (probe.http.list_users, a URL template with {cursor}, "
    "or probe.command.list_users).",
)
TARGET = FindingCode(
    "DMD002",
    "The organisation and its directory can be read from Scalekit",
    "The directory's users are what the app is compared with.",
    "Set scalekit.organization_id (and directory_id) and working client credentials; the "
    "environment check names credential problems.",
)
EXTERNAL_ID = FindingCode(
    "DMD003",
    "The organisation has an external id that maps it to the app's tenant",
    "Without a mapping the app cannot tell which tenant an event's users belong to; apps then "
    "guess (by domain or name), which mixes customers up.",
    "Set the organisation's external id to the app's tenant id when creating it (or update "
    "it via the API).",
    _DOCS,
)
RECONCILED = FindingCode(
    "DMD004",
    "Every directory user reconciles with the app",
    "Drift between the directory and the app means people with access they should not have, "
    "or without access they need.",
    "Fix the kinds of drift the other findings name; when a side could not be listed, check "
    "Scalekit's status and the probe's list_users setting.",
    _DOCS,
)
TENANT = FindingCode(
    "DMD005",
    "The app files the directory's users under the organisation's tenant",
    "Users land in the wrong customer's workspace: they see another tenant's data, or their "
    "own admins cannot manage them.",
    "Look the tenant up by the event's organization_id → organisation.external_id, never use "
    "the Scalekit organisation id itself as the tenant; expose the user's tenant in the probe "
    "(probe.*.fields.tenant) so it can be confirmed.",
    _DOCS,
)

#: How each kind of drift is recorded: its code (what is tested, why it matters, the fix)
#: and the title of its finding. Tenant mismatches are reported with the tenant mapping.
_DRIFT: dict[Drift, tuple[FindingCode, str]] = {
    Drift.MISSING_IN_APP: (
        FindingCode(
            "DMD006",
            "Every active directory user is in the app",
            "People the IdP provisioned cannot use the app.",
            "Replay the missed user_created events (or read the Directory API) and upsert on the "
            "directory user id.",
            _DOCS,
        ),
        "Active directory users are missing in the app",
    ),
    Drift.NOT_LINKED_IN_APP: (
        FindingCode(
            "DMD007",
            "Every directory user in the app is linked by its directory user id, not by email",
            "These people can use the app, but it cannot tell them from a new person when their "
            "email changes, and events keyed on the directory user id (updates, deactivation, "
            "deletion) may not find them.",
            "Store data.id (the directory user id) on each user and look users up by it; link "
            "these existing accounts once by email, then stop matching on email.",
            _DOCS,
        ),
        "Directory users are in the app by email only, not linked by directory user id",
    ),
    Drift.EXTRA_IN_APP: (
        FindingCode(
            "DMD008",
            "No active app user is missing from the directory (offboarding)",
            "An offboarding hole: people removed in the IdP still have access.",
            "Handle organization.directory.user_deleted by deactivating (or deleting) the user, "
            "and deactivate these users now.",
            _DOCS,
        ),
        "Active app users are no longer in the directory",
    ),
    Drift.STILL_ACTIVE_IN_APP: (
        FindingCode(
            "DMD009",
            "Users deactivated in the directory are inactive in the app",
            "An offboarding hole: suspended people keep access.",
            "Handle user_updated with active:false by revoking access; deactivate these users now.",
            _DOCS,
        ),
        "Users deactivated in the directory are still active in the app",
    ),
    Drift.INACTIVE_IN_APP: (
        FindingCode(
            "DMD010",
            "Active directory users are active in the app",
            "People the IdP says may work cannot sign in; reactivation events were lost or "
            "ignored.",
            "Handle user_updated with active:true by reactivating the user.",
            _DOCS,
        ),
        "Active directory users are inactive in the app",
    ),
    Drift.EMAIL_MISMATCH: (
        FindingCode(
            "DMD011",
            "App users have the directory's email",
            "Sign-in by email and notifications reach the wrong address; a later user with the old "
            "address may be merged into this one.",
            "Apply email changes from user_updated; key users on the directory user id, not email.",
            _DOCS,
        ),
        "App users have a different email than the directory",
    ),
    Drift.ROLE_MISMATCH: (
        FindingCode(
            "DMD012",
            "App roles are those the directory grants",
            "People keep privileges they lost in the IdP, or lack ones they were given.",
            "Recompute roles from each event's roles (or groups via the role map) on every "
            "user_updated, replacing rather than adding.",
            _DOCS,
        ),
        "App roles differ from what the directory's groups grant",
    ),
    Drift.DUPLICATE_IN_APP: (
        FindingCode(
            "DMD013",
            "Each directory user has one app user",
            "Deactivating the directory user may leave a twin active; duplicate creates were not "
            "idempotent.",
            "Make user_created an upsert on the directory user id and merge the duplicates.",
            _DOCS,
        ),
        "Several app users are linked to one directory user",
    ),
}

ATTRIBUTES = FindingCode(
    "DMD014",
    "Every directory user has the attributes the app requires",
    "Users without a required attribute are created incomplete, or refused by the app.",
    "Map the attribute in the IdP's SCIM attribute mappings (or the directory's attribute "
    "mappings), or give the app a default.",
    _DOCS,
)

CHECK = CheckInfo(
    id="data-model",
    title="Alignment with the app's user and organisation model",
    checklist_item=7,
    options=Options,
    needs=(Need.SCALEKIT, Need.PROBE),
    mutates=False,
    sharing="exclusive",  # compares every user: no test users in flight meanwhile
    docs_url=_DOCS,
    description=(
        "organisation external_id maps to the app's tenant; every directory user reconciles "
        "with the app (missing, extra, inactive, email, role); required attributes present"
    ),
    # Paging 100,000 users takes 3,334 Directory API calls; every call is bounded on its own.
    default_timeout_s=900.0,
    codes=(
        APP_LISTED,
        TARGET,
        EXTERNAL_ID,
        RECONCILED,
        TENANT,
        *(code for code, _ in _DRIFT.values()),
        ATTRIBUTES,
    ),
)

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
    from scim_readiness.config import DataModelSection  # pydantic: not on the start-up path

    section = ctx.config.data_model or DataModelSection()
    expected_tenant = _expected_tenant(ctx, section.expected_tenant, org)
    org_id, directory_id = str(org.id), str(directory.id)
    mapper = await _role_mapper(ctx, gateway, org_id, directory)
    known_roles = mapper.known_roles | await _environment_roles(gateway)
    try:
        groups = await _directory_groups(gateway, org_id, directory_id, mapper)
    except ScalekitError as exc:
        ctx.findings.errored(
            "Directory groups could not be listed", observed=exc.message, code=RECONCILED.code
        )
        return
    coverage = AttributeCoverage(section.required_attributes)
    compared_roles = (known_roles or None) if opts.compare_roles else None
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
    if compared_roles is None:
        roles_left_out = (
            "roles not compared (option compare_roles is off)"
            if not opts.compare_roles
            else "roles not compared (neither roles.map nor the environment names a role)"
        )
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
        org = await find_organization(ctx, gateway)
        directory = await find_directory(ctx, gateway, str(org.id))
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
    from .streams import reconcile_streams  # asyncio: not on the start-up path

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


async def _environment_roles(gateway: Any) -> frozenset[str]:
    """Every role the environment defines: the roles the directory can grant. App roles
    outside this set (a locally granted "owner") are not compared."""
    try:
        return frozenset(role.name for role in await gateway.list_roles())
    except ScalekitError:
        return frozenset()


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
    # The directory stream pages through the SDK's gRPC stub: loaded only to read users.
    from .directory_stream import has_attribute, iter_user_pages, lean_user

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
    import asyncio  # not on the start-up path

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
    else:
        findings.metrics["drift"] = {d.value: c for d, c in result.counts.items() if c}
    if result.unlinked_active_samples:
        findings.metrics["unlinked_active_samples"] = list(result.unlinked_active_samples)


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
