"""The emulator's live state: organisations, directories, users, groups, roles, tokens, links.

Every change goes through a method here, under one lock (the gRPC server answers from worker
threads, SCIM and delivery from the event loop). A change that Scalekit would announce calls
the ``emit`` hook with ``(event_type, organization_id, data)``; the emulator turns that into a
signed webhook delivery.

Users are kept in insertion order with a sequence number each, so directory paging is a
bisect, not a scan, and deleting users does not shift anyone's page.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scim_readiness import events
from scim_readiness.devstack.emulator.seed import DirectorySeed, Seed
from scim_readiness.devstack.emulator.tokens import SigningKey, process_signing_key

Emit = Callable[[str, str, Mapping[str, Any]], object]

# Scalekit ids are a prefix and a long number; one process-wide counter keeps them unique.
_ids = itertools.count(int(time.time() * 1000) * 1000)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids)}"


def rfc3339(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _group_extras(raw: dict[str, Any] | None) -> dict[str, Any]:
    """What a group's raw resource holds beyond what the state models on its own."""
    modelled = ("schemas", "id", "meta", "displayName", "externalId", "members")
    return {key: value for key, value in (raw or {}).items() if key not in modelled}


class NotFound(LookupError):
    """An id the state does not know."""


class Conflict(ValueError):
    """A uniqueness rule would be broken (e.g. a second user with the same userName)."""


@dataclass(slots=True)
class DirUser:
    id: str
    seq: int
    user_name: str
    email: str
    given_name: str
    family_name: str
    active: bool
    dp_id: str
    display_name: str = ""
    groups: list[str] = field(default_factory=list)  # dirgroup ids, in joining order
    # HR fields (department, title, employee_id…) and custom attributes; None for generated users
    attributes: dict[str, Any] | None = None
    raw: dict[str, Any] | None = None  # the SCIM resource as the IdP sent it
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def name(self) -> str:
        full = f"{self.given_name} {self.family_name}".strip()
        return full or self.display_name or self.user_name


@dataclass(slots=True)
class DirGroup:
    id: str
    seq: int
    display_name: str
    external_id: str | None
    dp_id: str
    members: dict[str, None] = field(default_factory=dict)  # user ids, ordered
    raw: dict[str, Any] | None = None
    updated_at: float = 0.0
    created_at: float = 0.0


@dataclass(slots=True)
class Secret:
    id: str
    suffix: str
    status: str
    create_time: float | None
    expire_time: float | None
    last_used_time: float | None


@dataclass(slots=True)
class Directory:
    id: str
    organization_id: str
    name: str
    provider: str
    enabled: bool
    scim_token: str
    secrets: list[Secret]
    role_assignments: dict[str, str]  # group display name or id -> role name
    attribute_mappings: dict[str, str]
    users: dict[str, DirUser] = field(default_factory=dict)
    groups: dict[str, DirGroup] = field(default_factory=dict)
    user_seqs: list[int] = field(default_factory=list)
    user_order: list[str] = field(default_factory=list)
    group_seqs: list[int] = field(default_factory=list)
    group_order: list[str] = field(default_factory=list)
    by_user_name: dict[str, str] = field(default_factory=dict)  # lower-case userName -> id
    last_synced_at: float | None = None
    user_updated_at: float | None = None
    group_updated_at: float | None = None
    updated_at: float = 0.0

    def group_roles(self, group: DirGroup) -> str | None:
        return self.role_assignments.get(group.id) or self.role_assignments.get(group.display_name)

    def roles_of(self, user: DirUser) -> list[str]:
        roles: list[str] = []
        for group_id in user.groups:
            group = self.groups.get(group_id)
            role = self.group_roles(group) if group is not None else None
            if role is not None and role not in roles:
                roles.append(role)
        return roles

    def assignments(self) -> list[tuple[str, str]]:
        """(group id, role) for every assignment whose group exists; names resolve to ids."""
        by_name = {g.display_name: g.id for g in self.groups.values()}
        out = []
        for key, role in self.role_assignments.items():
            group_id = key if key in self.groups else by_name.get(key)
            out.append((group_id or key, role))
        return out


@dataclass(slots=True)
class Organization:
    id: str
    display_name: str
    external_id: str
    features: dict[str, bool]
    metadata: dict[str, str]
    created_at: float


@dataclass(slots=True)
class Role:
    id: str
    name: str
    display_name: str
    description: str


@dataclass(slots=True)
class PortalLink:
    id: str
    token: str
    organization_id: str
    features: tuple[str, ...]
    expires_at: float
    used: bool = False


_GIVEN = ("Ada", "Grace", "Alan", "Linus", "Barbara", "Donald", "Frances", "Ken", "Radia", "John")
_FAMILY = ("Lovelace", "Hopper", "Turing", "Liskov", "Knuth", "Allen", "Thompson", "Perlman")


def _sent_user(user: DirUser) -> dict[str, Any]:
    """The User resource as the IdP last sent it (PATCHes applied), with what the state holds
    for the fields it changes on its own (the API, tests)."""
    resource = dict(user.raw or {})
    resource["userName"] = user.user_name
    if "active" in resource or not user.active:
        resource["active"] = user.active
    return resource


def _sent_group(directory: Directory, group: DirGroup) -> dict[str, Any] | None:
    """The Group resource as the IdP last sent it (PATCHes applied), with the name the
    state holds and without members since deleted; None for a group no IdP sent (seeded)."""
    if group.raw is None:
        return None
    resource = dict(group.raw)
    resource["displayName"] = group.display_name
    resource.pop("externalId", None)
    if group.external_id:
        resource["externalId"] = group.external_id
    if "members" in resource:
        resource["members"] = [
            member
            for member in resource["members"] or []
            if isinstance(member, dict) and member.get("value") in directory.users
        ]
    return resource


class EmulatorState:
    def __init__(
        self, seed: Seed, *, base_url: str = "", signing_key: SigningKey | None = None
    ) -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self.base_url = base_url
        self.environment_id = seed.environment_id
        self.client_id = seed.client_id
        self.client_secret = seed.client_secret
        self.token_lifetime_s = seed.token_lifetime_s
        self.emit: Emit = lambda event_type, organization_id, data: None
        self.tokens: dict[str, float] = {}  # access token -> expiry (epoch)
        self._signing_key = signing_key
        self.portal_links: dict[str, PortalLink] = {}  # token -> link
        self._seq = itertools.count(1)
        now = time.time()
        self.organizations: dict[str, Organization] = {
            org.id: Organization(
                org.id,
                org.display_name,
                org.external_id,
                dict(org.features),
                dict(org.metadata),
                now,
            )
            for org in seed.organizations
        }
        self.roles: dict[str, Role] = {
            role.name: Role(
                new_id("role"), role.name, role.display_name or role.name, role.description
            )
            for role in seed.roles
        }
        self.directories: dict[str, Directory] = {}
        for directory in seed.directories:
            self._add_directory(directory, now)

    # -- seeding ---------------------------------------------------------------------------

    def _add_directory(self, spec: DirectorySeed, now: float) -> None:
        token = spec.scim_token or "scimtok_" + secrets.token_urlsafe(24)
        secret_list = [
            Secret(
                s.id or new_id("dirsecret"),
                s.suffix or token[-4:],
                s.status,
                s.create_time.timestamp() if s.create_time else now,
                s.expire_time.timestamp() if s.expire_time else None,
                s.last_used_time.timestamp() if s.last_used_time else None,
            )
            for s in spec.secrets
        ] or [Secret(new_id("dirsecret"), token[-4:], "ACTIVE", now, None, None)]
        directory = Directory(
            id=spec.id,
            organization_id=spec.organization_id,
            name=spec.name,
            provider=spec.provider,
            enabled=spec.enabled,
            scim_token=token,
            secrets=secret_list,
            role_assignments=dict(spec.role_assignments),
            attribute_mappings=dict(spec.attribute_mappings),
            updated_at=now,
            last_synced_at=now,
        )
        self.directories[spec.id] = directory
        for group in spec.groups:
            self._insert_group(
                directory,
                DirGroup(
                    group.id or new_id("dirgroup"),
                    next(self._seq),
                    group.display_name,
                    group.external_id or None,
                    group.external_id,
                    updated_at=now,
                ),
            )
        by_name = {g.display_name: g.id for g in directory.groups.values()}
        for user in spec.users:
            record = DirUser(
                id=user.id or new_id("diruser"),
                seq=next(self._seq),
                user_name=user.user_name,
                email=user.email or user.user_name,
                given_name=user.given_name,
                family_name=user.family_name,
                active=user.active,
                dp_id=user.external_id,  # none unless the seed gives one
                attributes=dict(user.attributes) or None,
                created_at=now,
                updated_at=now,
            )
            self._insert_user(directory, record)
            for ref in user.groups:
                group_id = ref if ref in directory.groups else by_name.get(ref)
                if group_id is None:
                    group_id = new_id("dirgroup")
                    self._insert_group(
                        directory,
                        DirGroup(group_id, next(self._seq), ref, None, "", updated_at=now),
                    )
                    by_name[ref] = group_id
                self._join(directory, record, directory.groups[group_id])

    def _insert_user(self, directory: Directory, user: DirUser) -> None:
        key = user.user_name.lower()
        if key == user.user_name:
            key = user.user_name  # share the string: 100,000 users, one copy each
        if key in directory.by_user_name:
            raise Conflict(f"userName {user.user_name!r} is already taken in this directory")
        directory.users[user.id] = user
        directory.user_seqs.append(user.seq)
        directory.user_order.append(user.id)
        directory.by_user_name[key] = user.id
        directory.user_updated_at = user.updated_at

    def _insert_group(self, directory: Directory, group: DirGroup) -> None:
        directory.groups[group.id] = group
        directory.group_seqs.append(group.seq)
        directory.group_order.append(group.id)
        directory.group_updated_at = group.updated_at

    @staticmethod
    def _join(directory: Directory, user: DirUser, group: DirGroup) -> bool:
        if user.id in group.members:
            return False
        group.members[user.id] = None
        user.groups.append(group.id)
        return True

    @staticmethod
    def _leave(user: DirUser, group: DirGroup) -> bool:
        if user.id not in group.members:
            return False
        del group.members[user.id]
        user.groups.remove(group.id)
        return True

    def generate_users(
        self, directory_id: str, n: int, *, group: str | None = None, domain: str = "bulk.example"
    ) -> int:
        """Add ``n`` synthetic users (no events: a bulk import, as for a scale test).

        Returns how many users the directory holds afterwards. Kept lean: generated users share
        their name strings and have no raw SCIM payload, so 100,000 of them fit in tens of MB.
        """
        with self.lock:
            directory = self.directory(directory_id)
            target = None
            if group is not None:
                target = self._group_by_ref(directory, group)
            now = time.time()
            start = len(directory.users)
            for index in range(start, start + n):
                user_name = f"user{index:07d}@{domain}"
                user = DirUser(
                    id=new_id("diruser"),
                    seq=next(self._seq),
                    user_name=user_name,
                    email=user_name,
                    given_name=_GIVEN[index % len(_GIVEN)],
                    family_name=_FAMILY[index % len(_FAMILY)],
                    active=True,
                    dp_id=f"00ugen{index:014d}",
                    created_at=now,
                    updated_at=now,
                )
                self._insert_user(directory, user)
                if target is not None:
                    self._join(directory, user, target)
            return len(directory.users)

    # -- lookups ---------------------------------------------------------------------------

    def directory(self, directory_id: str, organization_id: str | None = None) -> Directory:
        directory = self.directories.get(directory_id)
        if directory is None or (organization_id and directory.organization_id != organization_id):
            raise NotFound(f"directory {directory_id} not found")
        return directory

    def organization(self, organization_id: str) -> Organization:
        org = self.organizations.get(organization_id)
        if org is None:
            raise NotFound(f"organization {organization_id} not found")
        return org

    def organization_by_external_id(self, external_id: str) -> Organization:
        for org in self.organizations.values():
            if org.external_id and org.external_id == external_id:
                return org
        raise NotFound(f"organization with external id {external_id} not found")

    def user(self, directory: Directory, user_id: str) -> DirUser:
        user = directory.users.get(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    def group(self, directory: Directory, group_id: str) -> DirGroup:
        group = directory.groups.get(group_id)
        if group is None:
            raise NotFound(f"group {group_id} not found")
        return group

    def _group_by_ref(self, directory: Directory, ref: str) -> DirGroup:
        if ref in directory.groups:
            return directory.groups[ref]
        for group in directory.groups.values():
            if group.display_name == ref:
                return group
        raise NotFound(f"group {ref} not found")

    def directory_by_token(self, directory_id: str, token: str) -> Directory | None:
        directory = self.directories.get(directory_id)
        if directory is None or not secrets.compare_digest(directory.scim_token, token):
            return None
        active = [s for s in directory.secrets if s.status == "ACTIVE"]
        if not active:
            return None
        now = time.time()
        for secret in active:
            secret.last_used_time = now
        return directory

    @staticmethod
    def page(
        seqs: list[int],
        order: list[str],
        live: dict[str, Any],
        after_seq: int,
        size: int,
        keep: Callable[[Any], bool] | None = None,
    ) -> tuple[list[Any], int | None]:
        """Up to ``size`` live items after ``after_seq``; the seq to continue from, or None."""
        out: list[Any] = []
        index = bisect.bisect_right(seqs, after_seq)
        total = len(order)
        while index < total:
            item = live.get(order[index])
            if item is not None and (keep is None or keep(item)):
                if len(out) == size:
                    return out, out[-1].seq
                out.append(item)
            index += 1
        return out, None

    # -- tokens and portal links -----------------------------------------------------------

    @property
    def signing_key(self) -> SigningKey:
        if self._signing_key is None:
            self._signing_key = process_signing_key()
        return self._signing_key

    @signing_key.setter
    def signing_key(self, key: SigningKey) -> None:
        self._signing_key = key

    def issue_token(self) -> tuple[str, float]:
        """A signed JWT (RS256, the key's ``kid``), as Scalekit's client-credentials grant
        returns; remembered with its exact expiry (a JWT's ``exp`` is whole seconds)."""
        token = self.signing_key.issue(
            issuer=self.base_url, client_id=self.client_id, lifetime_s=self.token_lifetime_s
        )
        with self.lock:
            now = time.time()
            # Forget expired tokens now and then, so a long session stays small.
            if len(self.tokens) > 1000:
                self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
            self.tokens[token] = now + self.token_lifetime_s
        return token, self.token_lifetime_s

    def token_valid(self, token: str) -> bool:
        expiry = self.tokens.get(token)
        if expiry is not None:
            return expiry > time.time()
        # Issued before a restart that kept the key (--state-dir): its signature decides.
        claims = self.signing_key.claims(token)
        return claims is not None and claims.get("client_id") == self.client_id

    def new_portal_link(self, organization_id: str, features: tuple[str, ...]) -> PortalLink:
        with self.lock:
            self.organization(organization_id)
            link = PortalLink(
                new_id("lnk"),
                secrets.token_urlsafe(24),
                organization_id,
                features,
                time.time() + self.seed.portal.link_lifetime_s,
            )
            self.portal_links[link.token] = link
            return link

    # -- event data (Scalekit's shapes, domain §4) -----------------------------------------

    @staticmethod
    def user_data(directory: Directory, user: DirUser) -> dict[str, Any]:
        extra = dict(user.attributes or {})
        custom = extra.pop("custom_attributes", None)
        return events.user_data(
            id=user.id,
            organization_id=directory.organization_id,
            email=user.email or None,
            given_name=user.given_name or None,
            family_name=user.family_name or None,
            active=user.active,
            groups=[
                (gid, directory.groups[gid].display_name)
                for gid in user.groups
                if gid in directory.groups
            ],
            roles=directory.roles_of(user),
            dp_id=user.dp_id or None,
            preferred_username=user.user_name,
            custom_attributes=custom,
            name=f"{user.given_name} {user.family_name}".strip() or user.display_name or None,
            # What the directory holds, as the IdP sent it: nothing left out, nothing made up.
            vary=False,
            **extra,
            # A user the IdP never sent (seeded, generated) is described by its fields.
            **({} if user.raw is None else {"raw_attributes": _sent_user(user)}),
        )

    @staticmethod
    def user_deleted_data(directory: Directory, user: DirUser) -> dict[str, Any]:
        return events.user_deleted_data(
            id=user.id,
            organization_id=directory.organization_id,
            email=user.email or None,
            dp_id=user.dp_id or None,
            vary=False,
        )

    @staticmethod
    def group_data(
        directory: Directory, group: DirGroup, *, deleted: bool = False
    ) -> dict[str, Any]:
        if deleted:
            return events.group_deleted_data(
                id=group.id,
                directory_id=directory.id,
                display_name=group.display_name,
                organization_id=directory.organization_id,
                dp_id=group.dp_id or None,
                raw_attributes=_sent_group(directory, group),
            )
        return events.group_data(
            id=group.id,
            directory_id=directory.id,
            display_name=group.display_name,
            organization_id=directory.organization_id,
            external_id=group.external_id,
            raw_attributes=_sent_group(directory, group),
        )

    @staticmethod
    def directory_data(directory: Directory) -> dict[str, Any]:
        return events.directory_data(
            id=directory.id,
            organization_id=directory.organization_id,
            enabled=directory.enabled,
            provider=directory.provider,
            updated_at=rfc3339(directory.updated_at),
            # Scalekit's directory_disabled carries the sync status; directory_enabled does not.
            status=None if directory.enabled else "COMPLETED",
        )

    def _user_event(self, kind: str, directory: Directory, user: DirUser) -> None:
        self.emit(
            f"organization.directory.{kind}",
            directory.organization_id,
            self.user_data(directory, user),
        )

    # -- changes (called by the SCIM endpoint, the gRPC API and tests) ---------------------

    def create_user(
        self,
        directory: Directory,
        *,
        user_name: str,
        email: str,
        given_name: str = "",
        family_name: str = "",
        display_name: str = "",
        active: bool = True,
        external_id: str = "",
        attributes: dict[str, Any] | None = None,
        raw: dict[str, Any] | None = None,
    ) -> DirUser:
        with self.lock:
            now = time.time()
            user = DirUser(
                id=new_id("diruser"),
                seq=next(self._seq),
                user_name=user_name,
                email=email,
                given_name=given_name,
                family_name=family_name,
                display_name=display_name,
                active=active,
                dp_id=external_id,
                attributes=attributes or None,
                raw=raw,
                created_at=now,
                updated_at=now,
            )
            self._insert_user(directory, user)
            directory.last_synced_at = now
            self._user_event("user_created", directory, user)
            return user

    def update_user(self, directory: Directory, user: DirUser, **changes: Any) -> DirUser:
        """Apply field changes (any DirUser field but ids/groups); emits user_updated if anything
        changed. A userName change keeps the uniqueness rule."""
        with self.lock:
            new_name = changes.get("user_name")
            if new_name is not None and new_name.lower() != user.user_name.lower():
                if new_name.lower() in directory.by_user_name:
                    raise Conflict(f"userName {new_name!r} is already taken in this directory")
                del directory.by_user_name[user.user_name.lower()]
                directory.by_user_name[new_name.lower()] = user.id
            changed = False
            for key, value in changes.items():
                if key in ("id", "seq", "groups", "created_at", "updated_at"):
                    raise ValueError(f"{key} cannot be changed")
                if getattr(user, key) != value:
                    setattr(user, key, value)
                    # raw_attributes is part of the event: a change there is a change.
                    changed = True
            if changed:
                user.updated_at = directory.user_updated_at = directory.last_synced_at = time.time()
                self._user_event("user_updated", directory, user)
            return user

    def delete_user(self, directory: Directory, user: DirUser) -> None:
        with self.lock:
            for group_id in list(user.groups):
                self._leave(user, directory.groups[group_id])
            del directory.users[user.id]
            directory.by_user_name.pop(user.user_name.lower(), None)
            directory.user_updated_at = directory.last_synced_at = time.time()
            self.emit(
                "organization.directory.user_deleted",
                directory.organization_id,
                self.user_deleted_data(directory, user),
            )

    def create_group(
        self,
        directory: Directory,
        *,
        display_name: str,
        external_id: str | None = None,
        raw: dict[str, Any] | None = None,
    ) -> DirGroup:
        with self.lock:
            for group in directory.groups.values():
                if group.display_name.lower() == display_name.lower():
                    raise Conflict(f"displayName {display_name!r} is already taken")
            now = time.time()
            group = DirGroup(
                new_id("dirgroup"),
                next(self._seq),
                display_name,
                external_id or None,
                external_id or "",
                raw=raw,
                updated_at=now,
                created_at=now,
            )
            self._insert_group(directory, group)
            directory.last_synced_at = now
            self.emit(
                "organization.directory.group_created",
                directory.organization_id,
                self.group_data(directory, group),
            )
            return group

    def rename_group(self, directory: Directory, group: DirGroup, display_name: str) -> None:
        with self.lock:
            if display_name == group.display_name:
                return
            group.display_name = display_name
            group.updated_at = directory.group_updated_at = time.time()
            self.emit(
                "organization.directory.group_updated",
                directory.organization_id,
                self.group_data(directory, group),
            )
            # Names carry roles (assignments may be keyed by name) and appear in user events.
            for user_id in group.members:
                self._user_event("user_updated", directory, directory.users[user_id])

    def update_group(
        self,
        directory: Directory,
        group: DirGroup,
        *,
        display_name: str,
        external_id: str | None,
        raw: dict[str, Any] | None,
        members: Sequence[str],
    ) -> None:
        """Replace a group whole (SCIM PUT, PATCH): one group_updated when its own fields
        changed, then membership changes as :meth:`set_members` announces them."""
        with self.lock:
            for other in directory.groups.values():
                if other is not group and other.display_name.lower() == display_name.lower():
                    raise Conflict(f"displayName {display_name!r} is already taken")
            wanted = dict.fromkeys(members)
            self.set_members(
                directory,
                group,
                add=[uid for uid in wanted if uid not in group.members],
                remove=[uid for uid in group.members if uid not in wanted],
            )
            # Membership is announced by user_updated alone; the group's own fields by
            # group_updated.
            own_before = _group_extras(group.raw)
            own_after = _group_extras(raw)
            announce = (group.external_id, own_before) != (external_id, own_after)
            group.raw = raw
            if announce:
                group.external_id = external_id
                group.dp_id = external_id or group.dp_id
                if display_name == group.display_name:
                    group.updated_at = directory.group_updated_at = time.time()
                    self.emit(
                        "organization.directory.group_updated",
                        directory.organization_id,
                        self.group_data(directory, group),
                    )
            self.rename_group(directory, group, display_name)

    def set_members(
        self,
        directory: Directory,
        group: DirGroup,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> list[DirUser]:
        """Add/remove members by user id; unknown ids raise NotFound before anything changes.
        Every user whose membership changed gets a user_updated (groups and roles recalculated)."""
        with self.lock:
            adding = [self.user(directory, uid) for uid in add]
            removing = [self.user(directory, uid) for uid in remove]
            changed: dict[str, DirUser] = {}
            for user in adding:
                if self._join(directory, user, group):
                    changed[user.id] = user
            for user in removing:
                if self._leave(user, group):
                    changed[user.id] = user
            if changed:
                now = time.time()
                group.updated_at = directory.group_updated_at = now
                for user in changed.values():
                    user.updated_at = now
                    self._user_event("user_updated", directory, user)
            return list(changed.values())

    def delete_group(self, directory: Directory, group: DirGroup) -> None:
        with self.lock:
            members = [directory.users[uid] for uid in group.members]
            for user in members:
                self._leave(user, group)
            del directory.groups[group.id]
            now = time.time()
            directory.group_updated_at = directory.last_synced_at = now
            self.emit(
                "organization.directory.group_deleted",
                directory.organization_id,
                self.group_data(directory, group, deleted=True),
            )
            for user in members:
                user.updated_at = now
                self._user_event("user_updated", directory, user)

    def set_directory_enabled(self, directory: Directory, enabled: bool) -> None:
        with self.lock:
            if directory.enabled == enabled:
                return
            directory.enabled = enabled
            directory.updated_at = time.time()
            kind = "directory_enabled" if enabled else "directory_disabled"
            self.emit(
                f"organization.{kind}", directory.organization_id, self.directory_data(directory)
            )
