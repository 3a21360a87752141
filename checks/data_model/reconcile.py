"""Streaming reconciliation of a Scalekit directory against the app's own users.

Both sides arrive as streams of pages (the Directory API pages 30 users at a time; the app's
probe pages its list endpoint), concurrently. The reconciler is a symmetric hash join keyed
on the directory user id: a record waits in a compact tuple until its partner arrives from
the other side, and is dropped once compared. What is still waiting when both streams end is
"missing in the app" or "extra in the app". Memory is bounded by the records waiting for a
partner (never more than one compact tuple per user), not by anything either side sends;
nothing is requested per user.

Pure logic with no I/O; :mod:`.streams` drives the two async streams into it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .drift import Drift

# Drift that leaves someone with access they should not have (or without access they need).
OFFBOARDING_HOLES = frozenset({Drift.EXTRA_IN_APP, Drift.STILL_ACTIVE_IN_APP})


class DirectoryRecord(NamedTuple):
    """What the reconciler needs of one directory user (built by the caller)."""

    id: str
    email: str
    active: bool | None  # None: the directory does not say
    roles: frozenset[str] | None  # expected roles; None: no role mapping to compare with


class AppRecord(NamedTuple):
    id: str
    directory_user_id: str | None
    email: str
    active: bool
    roles: frozenset[str]
    tenant: str | None


class Sample(NamedTuple):
    directory_user_id: str
    email: str
    detail: str


# Waiting records, kept as plain tuples: (email, active, roles) and
# (app id, email, active, roles, tenant). Role sets are interned so 100,000 users holding the
# same three combinations share three frozensets.
_DirWaiting = tuple[str, bool | None, frozenset[str] | None]
_AppWaiting = tuple[str, str, bool, frozenset[str], str | None]


@dataclass
class ReconcileResult:
    directory_users: int = 0
    directory_active: int = 0
    app_users: int = 0
    matched: int = 0
    unlinked_app_users: int = 0  # app users with no directory user id (local accounts)
    unlinked_active_samples: list[str] = field(default_factory=list)
    out_of_scope_app_users: int = 0  # linked to no user here and in another tenant
    counts: dict[Drift, int] = field(default_factory=lambda: dict.fromkeys(Drift, 0))
    samples: dict[Drift, list[Sample]] = field(default_factory=lambda: {d: [] for d in Drift})
    tenants_seen: dict[str, int] = field(default_factory=dict)  # tenant -> matched users
    peak_waiting: int = 0

    @property
    def drift_total(self) -> int:
        return sum(self.counts.values())


class Reconciler:
    """Feed it both sides in any order and interleaving; call :meth:`finish` once."""

    def __init__(
        self,
        *,
        expected_tenant: str | None = None,
        known_roles: frozenset[str] | None = None,
        sample_limit: int = 5,
    ) -> None:
        self._expected_tenant = expected_tenant
        # Roles the mapping can grant; app roles outside it (a locally granted "owner") are
        # not the directory's business. None: compare nothing about roles.
        self._known_roles = known_roles
        self._sample_limit = sample_limit
        self._dir_waiting: dict[str, _DirWaiting] = {}
        self._app_waiting: dict[str, _AppWaiting] = {}
        # Ids already compared, to notice a second app user linked to the same directory user.
        self._matched: set[str] = set()
        # Unlinked app users by email: a directory user who finds no partner by id may still
        # be in the app, held by email alone ("not linked", not "missing").
        self._unlinked_by_email: dict[str, str] = {}
        self._interned: dict[frozenset[str], frozenset[str]] = {}
        self.result = ReconcileResult()
        self._finished = False

    def _note(self, drift: Drift, directory_user_id: str, email: str, detail: str) -> None:
        self.result.counts[drift] += 1
        samples = self.result.samples[drift]
        if len(samples) < self._sample_limit:
            samples.append(Sample(directory_user_id, email, detail))

    def add_directory_user(self, record: DirectoryRecord) -> None:
        self.add_directory_users((record,))

    def add_directory_users(self, records: Iterable[DirectoryRecord]) -> None:
        # One loop with everything in locals: it runs once per directory user.
        result = self.result
        dir_waiting, app_waiting = self._dir_waiting, self._app_waiting
        intern = self._interned.setdefault
        compare = self._compare
        seen = active_seen = 0
        for user_id, raw_email, active, roles in records:
            seen += 1
            if active is not False:
                active_seen += 1
            if roles is not None:
                roles = intern(roles, roles)
            email = raw_email.strip().lower()
            waiting = app_waiting.pop(user_id, None)
            if waiting is not None:
                compare(user_id, (email, active, roles), waiting)
                continue
            dir_waiting[user_id] = (email, active, roles)
            held = len(dir_waiting) + len(app_waiting)
            if held > result.peak_waiting:
                result.peak_waiting = held
        result.directory_users += seen
        result.directory_active += active_seen

    def add_app_user(self, record: AppRecord) -> None:
        self.add_app_users((record,))

    def add_app_users(self, records: Iterable[AppRecord]) -> None:
        result = self.result
        dir_waiting, app_waiting = self._dir_waiting, self._app_waiting
        matched = self._matched
        intern = self._interned.setdefault
        compare = self._compare
        for app_id, key, raw_email, active, raw_roles, tenant in records:
            result.app_users += 1
            email = raw_email.strip().lower()
            if not key:
                result.unlinked_app_users += 1
                self._unlinked_by_email.setdefault(email, app_id)
                if active and self._in_scope(tenant):
                    samples = result.unlinked_active_samples
                    if len(samples) < self._sample_limit:
                        samples.append(f"{app_id} <{email}>")
                continue
            app = (app_id, email, active, intern(raw_roles, raw_roles), tenant)
            waiting = dir_waiting.pop(key, None)
            if waiting is not None:
                compare(key, waiting, app)
                continue
            if key in matched or key in app_waiting:
                self._note(
                    Drift.DUPLICATE_IN_APP,
                    key,
                    email,
                    f"app user {app_id} is a second app user for this directory user",
                )
                continue
            app_waiting[key] = app
            held = len(dir_waiting) + len(app_waiting)
            if held > result.peak_waiting:
                result.peak_waiting = held

    def _in_scope(self, tenant: str | None) -> bool:
        return self._expected_tenant is None or tenant is None or tenant == self._expected_tenant

    def _compare(self, key: str, directory: _DirWaiting, app: _AppWaiting) -> None:
        self._matched.add(key)
        self.result.matched += 1
        dir_email, dir_active, dir_roles = directory
        app_id, app_email, app_active, app_roles, tenant = app
        shown = dir_email or app_email
        if tenant is not None:
            self.result.tenants_seen[tenant] = self.result.tenants_seen.get(tenant, 0) + 1
            if self._expected_tenant is not None and tenant != self._expected_tenant:
                self._note(
                    Drift.TENANT_MISMATCH,
                    key,
                    shown,
                    f"app tenant {tenant!r}, expected {self._expected_tenant!r}",
                )
        if dir_active is False and app_active:
            self._note(Drift.STILL_ACTIVE_IN_APP, key, shown, f"app user {app_id} is active")
        elif dir_active is True and not app_active:
            self._note(Drift.INACTIVE_IN_APP, key, shown, f"app user {app_id} is inactive")
        if dir_email and app_email != dir_email:
            self._note(Drift.EMAIL_MISMATCH, key, shown, f"app has <{app_email}>")
        if (
            dir_roles is not None
            and self._known_roles is not None
            and dir_active is not False
            and app_active
        ):
            granted = app_roles & self._known_roles
            if granted != dir_roles:
                self._note(
                    Drift.ROLE_MISMATCH,
                    key,
                    shown,
                    f"app roles {_fmt(granted)}, directory implies {_fmt(dir_roles)}",
                )

    @property
    def waiting_directory(self) -> int:
        return len(self._dir_waiting)

    @property
    def waiting_app(self) -> int:
        return len(self._app_waiting)

    def finish(self) -> ReconcileResult:
        """Classify everything still waiting for a partner; call once, after both streams."""
        if self._finished:
            return self.result
        self._finished = True
        unlinked = self._unlinked_by_email
        for key, (email, active, _roles) in self._dir_waiting.items():
            if active is False:
                continue
            holder = unlinked.get(email)
            if holder is not None:
                detail = f"app user {holder} has this email but no directory user id"
                self._note(Drift.NOT_LINKED_IN_APP, key, email, detail)
            else:
                self._note(Drift.MISSING_IN_APP, key, email, "no app user has this directory id")
        for key, (app_id, email, active, _roles, tenant) in self._app_waiting.items():
            if not self._in_scope(tenant):
                self.result.out_of_scope_app_users += 1
            elif active:
                self._note(
                    Drift.EXTRA_IN_APP, key, email, f"app user {app_id} is active, not in directory"
                )
        self._dir_waiting.clear()
        self._app_waiting.clear()
        unlinked.clear()
        self._matched.clear()
        return self.result


def _fmt(roles: frozenset[str]) -> str:
    return "{" + ", ".join(sorted(roles)) + "}" if roles else "{}"


class RoleMapper:
    """The roles a directory user should hold in the app, from their groups.

    ``by_group_id`` comes from the directory's role assignments; ``by_group_name`` from the
    config's group→role map (used for groups the directory does not assign). A user in no
    mapped group gets ``default_role`` if one is set. With ``combine="highest"`` only the
    first role of ``precedence`` that applies is kept.
    """

    def __init__(
        self,
        *,
        by_group_id: Mapping[str, str],
        by_group_name: Mapping[str, str],
        default_role: str | None = None,
        combine: str = "all",
        precedence: Sequence[str] = (),
    ) -> None:
        self._by_id = dict(by_group_id)
        self._by_name = {name.lower(): role for name, role in by_group_name.items()}
        self._default = default_role
        self._combine = combine
        self._precedence = tuple(precedence)
        self._cache: dict[tuple[tuple[str, str], ...], frozenset[str]] = {}
        self._final: dict[tuple[str, ...], frozenset[str]] = {}

    @property
    def active(self) -> bool:
        return bool(self._by_id or self._by_name or self._default)

    @property
    def known_roles(self) -> frozenset[str]:
        roles = set(self._by_id.values()) | set(self._by_name.values())
        if self._default:
            roles.add(self._default)
        return frozenset(roles)

    def roles_for(self, groups: Iterable[tuple[str, str]]) -> frozenset[str]:
        """``groups`` as (group id, display name) pairs."""
        key = tuple(sorted(groups))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        roles: set[str] = set()
        for group_id, name in key:
            role = self._by_id.get(group_id) or self._by_name.get(name.lower())
            if role:
                roles.add(role)
        result = self._finalise(roles)
        if len(self._cache) < 4096:
            self._cache[key] = result
        return result

    def finalise(self, roles: Iterable[str]) -> frozenset[str]:
        """Apply the app's policy to a set of granted roles: the default role when none is
        granted, and only the highest one with ``combine="highest"``. Results are shared:
        100,000 users hold a handful of distinct role sets."""
        key = tuple(roles)
        cached = self._final.get(key)
        if cached is not None:
            return cached
        result = self._finalise(key)
        if len(self._final) < 4096:
            self._final[key] = result
        return result

    def _finalise(self, roles: Iterable[str]) -> frozenset[str]:
        chosen = {role for role in roles if role}
        if not chosen and self._default:
            chosen.add(self._default)
        if self._combine == "highest" and len(chosen) > 1:
            ranked = [r for r in self._precedence if r in chosen]
            chosen = {ranked[0]} if ranked else chosen
        return frozenset(chosen)


class AttributeCoverage:
    """How many directory users lack each required attribute."""

    def __init__(self, required: Sequence[str]) -> None:
        self.required = tuple(required)
        self.users = 0
        self.lacking: dict[str, int] = dict.fromkeys(self.required, 0)

    def add(self, present: Callable[[str], bool]) -> None:
        self.users += 1
        for name in self.required:
            if not present(name):
                self.lacking[name] += 1

    def share_lacking(self, name: str) -> float:
        return self.lacking[name] / self.users if self.users else 0.0


Progress = Callable[[int, int | None], None]  # (directory users seen, expected total or None)
