"""Driving directory changes the two ways a round-trip check can: as Scalekit or as the IdP.

* :class:`EventsDriver` plays Scalekit: it sends correctly signed directory events straight to
  the app's webhook, with data as Scalekit would send it (``diruser_…``/``dirgroup_…`` ids,
  the configured organisation, groups and the roles their role assignments give).
* :class:`ScimDriver` plays the IdP: SCIM 2.0 requests to the directory's SCIM endpoint with
  its bearer token; Scalekit then computes roles and delivers the webhooks itself, so the
  whole chain is under test.

Both keep the ledger: every user and group is recorded *before* the request that creates it
and marked removed once it is gone, and :func:`cleanup_outstanding` removes whatever a check
left behind (after a failure or a cancellation) through the channel that created it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx

from scim_readiness.clients.answers import (
    EXCERPT_CHARS,
    MAX_SCIM_ANSWER_BYTES,
    AnswerTooLarge,
    HostileAnswer,
    decode_json,
    describe_http_error,
    excerpt,
    request_capped,
    shown_endpoint,
)
from scim_readiness.errors import ProbeError, TargetError
from scim_readiness.events import (
    EventType,
    group_data,
    group_deleted_data,
    user_data,
    user_deleted_data,
)
from scim_readiness.plugin.identities import TestIdentities, TestIdentity
from scim_readiness.plugin.ledger import recorded_by_this_process
from scim_readiness.provisioning.steps import PROFILE_ATTRIBUTE
from scim_readiness.webhooks.sender import Sender, Senders, event_target, redirect_blocker
from scim_readiness.webhooks.test_users import maybe_applied

if TYPE_CHECKING:
    from scim_readiness.clients.probe import Probe
    from scim_readiness.config import Config, ProbeSection, ScalekitSection, ScimIdpSection
    from scim_readiness.plugin.ledger import Kind, Ledger, LedgerEntry

Mode = Literal["events", "scim"]
#: Whose SCIM dialect ``mode: scim`` speaks (option ``idp_profile``): the shapes and order of
#: the requests each IdP sends for the same change.
IdpProfile = Literal["generic", "okta", "entra", "google"]
IDP_PROFILES: tuple[IdpProfile, ...] = ("generic", "okta", "entra", "google")
#: The profile attribute the lifecycle check changes: an HR field both Scalekit's events
#: (``department``) and SCIM's enterprise extension carry.
_PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
_ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class ChangeRejected(TargetError):
    """The app (events) or the SCIM endpoint (scim) refused a change the checker sent.

    ``by_app`` tells which: a refusal by the app of a correctly signed, well-formed event is a
    defect of the app; a refusal by the SCIM endpoint is a problem of the directory setup.
    """

    def __init__(self, message: str, *, by_app: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.by_app = by_app
        self.status = status


class DeliveryRedirected(ChangeRejected):
    """The app answered a correctly signed event with a redirect: not accepted (redirects are
    not followed), and a cause webhook-endpoint reports, not a defect of this step."""


@dataclass(frozen=True, slots=True)
class GroupRef:
    """A directory group as the driver addresses it.

    ``id`` is Scalekit's ``dirgroup_…`` id (events) or the SCIM resource id (scim);
    ``test`` is True for groups this run created (and must delete).
    """

    id: str
    display_name: str
    test: bool = False


@dataclass(slots=True)
class DirectoryUser:
    """What the directory holds for one test user; the drivers keep it current."""

    identity: TestIdentity
    handle: str  # diruser_… (events) or the SCIM resource id (scim)
    email: str
    given_name: str
    family_name: str
    active: bool = True
    attributes: dict[str, str] = field(default_factory=dict)
    groups: list[GroupRef] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


class RoleAssignments:
    """Which role each directory group grants, as Scalekit's role assignments say.

    Keys are group ids; ``by_name`` covers groups only known by display name (the fallback to
    the config map when the directory could not be read).
    """

    def __init__(
        self, by_id: Mapping[str, str] | None = None, by_name: Mapping[str, str] | None = None
    ) -> None:
        self.by_id = dict(by_id or {})
        self.by_name = dict(by_name or {})

    def role_of(self, group: GroupRef) -> str | None:
        return self.by_id.get(group.id) or self.by_name.get(group.display_name)

    def roles_for(self, groups: Iterable[GroupRef]) -> list[str]:
        """Roles for a member of ``groups``, in group order, each once (as events list them)."""
        roles: list[str] = []
        for group in groups:
            role = self.role_of(group)
            if role and role not in roles:
                roles.append(role)
        return roles


class ProvisioningDriver(Protocol):
    """One way of making directory changes; every method returns once the change was accepted
    by the receiving side (the app's webhook, or the SCIM endpoint) and raises
    :class:`ChangeRejected` otherwise."""

    channel: Mode

    async def create_user(
        self, identity: TestIdentity, *, attributes: Mapping[str, str] | None = None
    ) -> DirectoryUser: ...

    async def update_user(
        self,
        user: DirectoryUser,
        *,
        given_name: str | None = None,
        family_name: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> None: ...

    async def change_email(self, user: DirectoryUser, email: str) -> None: ...

    async def set_active(self, user: DirectoryUser, active: bool) -> None: ...

    async def delete_user(self, user: DirectoryUser, *, mark_removed: bool = True) -> None: ...

    def mark_removed(self, user: DirectoryUser) -> None: ...

    async def create_group(self, label: str) -> GroupRef: ...

    async def existing_group(self, group_id: str, display_name: str) -> GroupRef: ...

    async def add_member(self, group: GroupRef, user: DirectoryUser) -> None: ...

    async def remove_member(self, group: GroupRef, user: DirectoryUser) -> None: ...

    async def delete_group(self, group: GroupRef, members: Sequence[DirectoryUser]) -> None: ...

    async def aclose(self) -> None: ...


def missing_for_mode(config: Config, mode: Mode) -> str | None:
    """Why ``mode`` cannot run with ``config``, or None when it can."""
    if mode == "events":
        if not config.webhook.url or config.webhook.secret is None:
            return "mode 'events' needs webhook.url and webhook.secret"
        return None
    if config.scim_idp is None:
        return "mode 'scim' needs the scim_idp section (the directory's SCIM URL and token)"
    return None


#: Makes an HTTP client (trust and timeouts set) that waits ``timeout_s``; the caller closes it.
HttpFactory = Callable[[float], "httpx.AsyncClient"]


@dataclass(frozen=True, slots=True)
class DriverRecords:
    """Where a driver keeps the ledger in step with its changes: the run's ledger, the check
    the lines are recorded for, and the organisation and directory each line names."""

    ledger: Ledger
    check_id: str
    scalekit: ScalekitSection

    def created(self, kind: Kind, object_id: str, *, channel: Mode, **details: Any) -> None:
        found: dict[str, Any] = {
            "organization_id": self.scalekit.organization_id,
            "directory_id": self.scalekit.directory_id,
        }
        found.update({key: value for key, value in details.items() if value is not None})
        self.ledger.created(kind, object_id, channel=channel, check_id=self.check_id, **found)

    def removed(self, kind: Kind, object_id: str, *, channel: Mode) -> None:
        self.ledger.removed(kind, object_id, channel=channel, check_id=self.check_id)


@dataclass(frozen=True, slots=True)
class Channels:
    """The two ways one check's drivers reach the directory: signed events to the configured
    webhook (made by ``senders``, carrying ``environment_id`` or one derived from the run),
    and SCIM requests to ``config.scim_idp`` over clients from ``http``; either way keeping
    ``records``."""

    config: Config
    records: DriverRecords
    senders: Senders
    http: HttpFactory
    environment_id: str | None = None

    def driver(
        self,
        mode: Mode,
        roles: RoleAssignments | None = None,
        *,
        profile: IdpProfile = "generic",
    ) -> ProvisioningDriver:
        """A driver for ``mode`` (ValueError when the config lacks what it needs)."""
        identities = self.senders.identities
        if mode == "events":
            if missing_for_mode(self.config, "events") is not None:
                raise ValueError("mode 'events' needs webhook.url and webhook.secret")
            target = event_target(self.config.scalekit, identities.run_id, self.environment_id)
            # Made now, entered at the first event: a sender that may not sign for this URL
            # refuses here, before anything is recorded in the ledger.
            sender = self.senders.to_webhook(target)
            return EventsDriver(sender, roles or RoleAssignments(), self.records, identities)
        section = self.config.scim_idp
        if section is None:
            raise ValueError("mode 'scim' needs the scim_idp section")
        return ScimDriver(section, self.http, self.records, identities, profile)


# --------------------------------------------------------------------------------------------
# what both channels do alike


class _Driver:
    """The parts of a driver that do not depend on the channel: keeping the user's state and
    the ledger in step with each change. Subclasses say how a user change is published and
    how a user is deleted."""

    records: DriverRecords
    identities: TestIdentities
    channel: Mode

    async def _publish_user(self, user: DirectoryUser, label: str) -> None:
        raise NotImplementedError

    async def _delete_user(self, user: DirectoryUser) -> None:
        raise NotImplementedError

    def _record_created(self, kind: Kind, object_id: str, **details: Any) -> None:
        """Ledger: this driver is about to create ``object_id`` (call before the request)."""
        self.records.created(kind, object_id, channel=self.channel, **details)

    def _record_removed(self, kind: Kind, object_id: str) -> None:
        self.records.removed(kind, object_id, channel=self.channel)

    def _email_details(self, user: DirectoryUser) -> dict[str, Any]:
        """What the ledger keeps beside a new email, so cleanup can still address the user."""
        return {}

    async def update_user(
        self,
        user: DirectoryUser,
        *,
        given_name: str | None = None,
        family_name: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        user.given_name = given_name or user.given_name
        user.family_name = family_name or user.family_name
        user.attributes.update(attributes or {})
        await self._publish_user(user, "user_updated profile")

    async def change_email(self, user: DirectoryUser, email: str) -> None:
        # Later cleanup (and the sweep through the app) must address the user by its current
        # email: record it before the change is sent.
        self._record_created("user", user.handle, email=email, **self._email_details(user))
        user.email = email
        await self._publish_user(user, "user_updated email")

    async def delete_user(self, user: DirectoryUser, *, mark_removed: bool = True) -> None:
        await self._delete_user(user)
        if mark_removed:
            self.mark_removed(user)

    def mark_removed(self, user: DirectoryUser) -> None:
        self._record_removed("user", user.handle)


# --------------------------------------------------------------------------------------------
# events: the checker as Scalekit


class EventsDriver(_Driver):
    """Sends signed Scalekit events to the app's webhook through ``sender`` (not yet entered:
    the driver enters it at the first event and leaves it in :meth:`aclose`), addressed to
    the sender's target; groups are named after ``identities``."""

    channel: Mode = "events"

    def __init__(
        self,
        sender: Sender,
        roles: RoleAssignments,
        records: DriverRecords,
        identities: TestIdentities,
    ) -> None:
        self.records = records
        self.identities = identities
        self.roles = roles
        self.target = sender.target
        self._unopened = sender
        self._sender: Sender | None = None

    async def _send(self, label: str, event_type: EventType, data: Mapping[str, Any]) -> None:
        if self._sender is None:
            self._sender = await self._unopened.__aenter__()
        outcome = await self._sender.send_event(label, self._sender.event(event_type, data))
        if outcome.redirected:
            raise DeliveryRedirected(redirect_blocker(outcome), by_app=True, status=outcome.status)
        if not outcome.accepted:
            raise ChangeRejected(
                f"the webhook refused a correctly signed {event_type.short_name} event: "
                f"{outcome.summary()}",
                by_app=True,
                status=outcome.status,
            )

    async def aclose(self) -> None:
        if self._sender is not None:
            await self._sender.__aexit__(None, None, None)
            self._sender = None

    def _user_data(self, user: DirectoryUser) -> dict[str, Any]:
        extra: dict[str, Any] = dict(user.attributes)
        return user_data(
            id=user.handle,
            organization_id=self.target.organization_id,
            email=user.email,
            given_name=user.given_name,
            family_name=user.family_name,
            active=user.active,
            groups=[(group.id, group.display_name) for group in user.groups],
            roles=self.roles.roles_for(user.groups),
            dp_id=user.identity.dp_id,
            preferred_username=user.email,
            **extra,
        )

    async def _publish_user(self, user: DirectoryUser, label: str) -> None:
        await self._send(label, EventType.USER_UPDATED, self._user_data(user))

    def _email_details(self, user: DirectoryUser) -> dict[str, Any]:
        return {
            "dp_id": user.identity.dp_id,
            "given_name": user.given_name,
            "family_name": user.family_name,
        }

    async def create_user(
        self, identity: TestIdentity, *, attributes: Mapping[str, str] | None = None
    ) -> DirectoryUser:
        user = DirectoryUser(
            identity=identity,
            handle=identity.directory_user_id,
            email=identity.email,
            given_name=identity.given_name,
            family_name=identity.family_name,
            attributes=dict(attributes or {}),
        )
        self._record_created(
            "user",
            user.handle,
            email=user.email,
            dp_id=identity.dp_id,
            given_name=user.given_name,
            family_name=user.family_name,
        )
        await self._send("user_created", EventType.USER_CREATED, self._user_data(user))
        return user

    async def set_active(self, user: DirectoryUser, active: bool) -> None:
        user.active = active
        await self._publish_user(user, f"user_updated active:{str(active).lower()}")

    async def _delete_user(self, user: DirectoryUser) -> None:
        await self._send(
            "user_deleted",
            EventType.USER_DELETED,
            user_deleted_data(
                id=user.handle,
                organization_id=self.target.organization_id,
                email=user.email,
                dp_id=user.identity.dp_id,
            ),
        )

    def _directory_id(self) -> str:
        return self.records.scalekit.directory_id or f"dir_{self.identities.run_id}"

    async def create_group(self, label: str) -> GroupRef:
        identities = self.identities
        group = GroupRef(identities.group_id(label), identities.group_name(label), test=True)
        self._record_created("group", group.id, display_name=group.display_name)
        await self._send(
            "group_created",
            EventType.GROUP_CREATED,
            group_data(
                id=group.id,
                directory_id=self._directory_id(),
                display_name=group.display_name,
                organization_id=self.target.organization_id,
            ),
        )
        return group

    async def existing_group(self, group_id: str, display_name: str) -> GroupRef:
        return GroupRef(group_id, display_name)

    async def add_member(self, group: GroupRef, user: DirectoryUser) -> None:
        if all(existing.id != group.id for existing in user.groups):
            user.groups.append(group)
        await self._publish_user(user, f"user_updated joined {group.display_name}")

    async def remove_member(self, group: GroupRef, user: DirectoryUser) -> None:
        user.groups = [existing for existing in user.groups if existing.id != group.id]
        await self._publish_user(user, f"user_updated left {group.display_name}")

    async def delete_group(self, group: GroupRef, members: Sequence[DirectoryUser]) -> None:
        await self._send(
            "group_deleted",
            EventType.GROUP_DELETED,
            group_deleted_data(
                id=group.id,
                directory_id=self._directory_id(),
                display_name=group.display_name,
                organization_id=self.target.organization_id,
            ),
        )
        if group.test:
            self._record_removed("group", group.id)
        # As Scalekit does: every member gets user_updated with groups and roles recalculated.
        for member in members:
            member.groups = [existing for existing in member.groups if existing.id != group.id]
            await self._publish_user(member, f"user_updated after {group.display_name} deleted")


# --------------------------------------------------------------------------------------------
# scim: the checker as the IdP


def _patch_op(*operations: Mapping[str, Any]) -> dict[str, Any]:
    """A SCIM PatchOp message (RFC 7644 §3.5.2)."""
    return {"schemas": [_PATCH_OP], "Operations": [dict(op) for op in operations]}


def _scim_json(response: httpx.Response) -> Any:
    """The JSON of a SCIM answer; ChangeRejected naming a hostile one (nested too deep)."""
    try:
        return decode_json(response.content)
    except HostileAnswer as exc:
        raise ChangeRejected(
            f"SCIM answer from {shown_endpoint(str(response.request.url))}: {exc}", by_app=False
        ) from None


def _scim_error(response: httpx.Response, secrets: Sequence[str] = ()) -> str:
    """``HTTP 4xx: detail`` for a SCIM error answer, redacted *before* it is cut short: an
    endpoint that echoes the bearer token must not leave its first characters in a finding."""
    detail = ""
    try:
        body = decode_json(response.content)
        if isinstance(body, dict):
            detail = str(body.get("detail") or body.get("scimType") or "")
    except ValueError:
        detail = response.text
    detail = excerpt(detail.encode(), secrets, limit=EXCERPT_CHARS) if detail else ""
    return f"HTTP {response.status_code}" + (f": {detail}" if detail else "")


class ScimDriver(_Driver):
    """SCIM 2.0 requests to the directory's endpoint (``section``, the config's ``scim_idp``)
    over a client from ``http``, as an IdP sends them: POST and PUT for users, PATCH for
    ``active`` and group membership, DELETE.

    ``profile`` picks an IdP's dialect: ``okta`` PATCHes ``active`` without a path (a value
    object) and deactivates before it deletes; ``entra`` writes ops capitalised
    (``Replace``/``Add``/``Remove``), booleans as strings (``"False"``), removes members with
    a value list, and soft-deletes (deactivates) before the delete; ``google`` sends the
    generic shapes (its hourly bulk sync is the burst delivery-semantics measures)."""

    channel: Mode = "scim"

    def __init__(
        self,
        section: ScimIdpSection,
        http: HttpFactory,
        records: DriverRecords,
        identities: TestIdentities,
        profile: IdpProfile = "generic",
    ) -> None:
        self.records = records
        self.identities = identities
        self.profile = profile
        self._http = http
        self._base = section.url.rstrip("/")
        self._token = section.token.get_secret_value()
        self._timeout_s = section.timeout_s
        self._client: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        ok_statuses: Sequence[int] = (),
    ) -> httpx.Response:
        """One SCIM request; ChangeRejected for network trouble or an unexpected status."""
        if self._client is None:
            self._client = self._http(self._timeout_s)
            self._client.headers["authorization"] = f"Bearer {self._token}"
            self._client.headers["accept"] = "application/scim+json"
        headers = {"content-type": "application/scim+json"} if body is not None else {}
        try:
            response = await request_capped(
                self._client,
                method,
                self._base + path,
                cap=MAX_SCIM_ANSWER_BYTES,
                json=body,
                params=params,
                headers=headers,
            )
        except (httpx.HTTPError, AnswerTooLarge) as exc:
            raise ChangeRejected(
                f"SCIM {method} {path} failed: {describe_http_error(exc)}", by_app=False
            ) from None
        if response.is_success or response.status_code in ok_statuses:
            return response
        raise ChangeRejected(
            f"SCIM {method} {path} answered {_scim_error(response, (self._token,))}",
            by_app=False,
            status=response.status_code,
        )

    def _user_resource(self, user: DirectoryUser) -> dict[str, Any]:
        # scim2-models is pydantic: loaded when a SCIM request is first built.
        from scim2_models import Context, Email, EnterpriseUser, Name, User

        # Test identities live on a reserved domain (.invalid) that the email validator of
        # scim2-models refuses by design; the address is built unvalidated on purpose.
        email = Email.model_construct(value=user.email, primary=True, type=Email.Type.work)
        resource = User[EnterpriseUser](
            user_name=user.email,
            external_id=user.identity.dp_id,
            name=Name(given_name=user.given_name, family_name=user.family_name),
            display_name=user.name,
            emails=[email],
            active=user.active,
        )
        if PROFILE_ATTRIBUTE in user.attributes:
            resource[EnterpriseUser] = EnterpriseUser(department=user.attributes[PROFILE_ATTRIBUTE])
        dumped: dict[str, Any] = resource.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        if PROFILE_ATTRIBUTE in user.attributes and _ENTERPRISE not in dumped.get("schemas", []):
            dumped.setdefault("schemas", []).append(_ENTERPRISE)
        return dumped

    @staticmethod
    def _resource_id(response: httpx.Response, what: str) -> str:
        try:
            body = _scim_json(response)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
            raise ChangeRejected(
                f"the SCIM endpoint created the {what} but answered without its id", by_app=False
            )
        return str(body["id"])

    async def create_user(
        self, identity: TestIdentity, *, attributes: Mapping[str, str] | None = None
    ) -> DirectoryUser:
        user = DirectoryUser(
            identity=identity,
            handle="",
            email=identity.email,
            given_name=identity.given_name,
            family_name=identity.family_name,
            attributes=dict(attributes or {}),
        )
        # The SCIM id exists only once the endpoint answers: record the userName first, so a
        # crash between request and answer still leaves something cleanup can look up.
        self._record_created("user", user.email, email=user.email, lookup="userName")
        response = await self.request("POST", "/Users", body=self._user_resource(user))
        user.handle = self._resource_id(response, "user")
        self._record_created("user", user.handle, email=user.email)
        self._record_removed("user", user.email)
        return user

    async def _publish_user(self, user: DirectoryUser, label: str) -> None:
        # An IdP sends the whole resource on every profile change (PUT).
        body = self._user_resource(user)
        body["id"] = user.handle
        await self.request("PUT", f"/Users/{user.handle}", body=body)

    def _op(self, name: str) -> str:
        return name.capitalize() if self.profile == "entra" else name

    async def set_active(self, user: DirectoryUser, active: bool) -> None:
        operation: dict[str, Any]
        if self.profile == "okta":
            operation = {"op": "replace", "value": {"active": active}}
        elif self.profile == "entra":
            operation = {"op": "Replace", "path": "active", "value": str(active)}
        else:
            operation = {"op": "replace", "path": "active", "value": active}
        await self.request("PATCH", f"/Users/{user.handle}", body=_patch_op(operation))
        user.active = active

    async def _delete_user(self, user: DirectoryUser) -> None:
        if self.profile in ("okta", "entra") and user.active:
            # Neither deletes an active user outright: deactivation comes first.
            await self.set_active(user, False)
        await self.request("DELETE", f"/Users/{user.handle}", ok_statuses=(404,))

    async def create_group(self, label: str) -> GroupRef:
        from scim2_models import Context, Group

        name = self.identities.group_name(label)
        self._record_created("group", name, display_name=name, lookup="displayName")
        resource = Group(display_name=name, external_id=f"{self.identities.run_id}-{label}")
        response = await self.request(
            "POST", "/Groups", body=resource.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        )
        group = GroupRef(self._resource_id(response, "group"), name, test=True)
        self._record_created("group", group.id, display_name=name)
        self._record_removed("group", name)
        return group

    async def existing_group(self, group_id: str, display_name: str) -> GroupRef:
        """The SCIM id of a group the directory already has: looked up by displayName as an IdP
        would; the directory's own id when the endpoint does not filter groups."""
        found = await self.find_id("/Groups", f'displayName eq "{display_name}"')
        return GroupRef(found or group_id, display_name)

    async def find_id(self, path: str, scim_filter: str) -> str | None:
        try:
            response = await self.request("GET", path, params={"filter": scim_filter})
        except ChangeRejected:
            return None
        try:
            body = _scim_json(response)
        except ValueError:
            return None
        resources = body.get("Resources") if isinstance(body, dict) else None
        if isinstance(resources, list) and len(resources) == 1:
            found = resources[0].get("id") if isinstance(resources[0], dict) else None
            return str(found) if found else None
        return None

    async def _patch_members(self, group: GroupRef, operation: Mapping[str, Any]) -> None:
        await self.request("PATCH", f"/Groups/{group.id}", body=_patch_op(operation))

    async def add_member(self, group: GroupRef, user: DirectoryUser) -> None:
        await self._patch_members(
            group, {"op": self._op("add"), "path": "members", "value": [{"value": user.handle}]}
        )
        if all(existing.id != group.id for existing in user.groups):
            user.groups.append(group)

    async def remove_member(self, group: GroupRef, user: DirectoryUser) -> None:
        if self.profile == "entra":
            operation: dict[str, Any] = {
                "op": "Remove",
                "path": "members",
                "value": [{"value": user.handle}],
            }
        else:
            operation = {"op": "remove", "path": f'members[value eq "{user.handle}"]'}
        await self._patch_members(group, operation)
        user.groups = [existing for existing in user.groups if existing.id != group.id]

    async def delete_group(self, group: GroupRef, members: Sequence[DirectoryUser]) -> None:
        await self.request("DELETE", f"/Groups/{group.id}", ok_statuses=(404,))
        if group.test:
            self._record_removed("group", group.id)
        for member in members:
            member.groups = [existing for existing in member.groups if existing.id != group.id]


# --------------------------------------------------------------------------------------------
# cleanup


async def retire_user(driver: ProvisioningDriver, user: DirectoryUser) -> None:
    """Deactivate, then delete, as IdPs deprovision: an app that ignores deletions still ends
    with the test user inactive."""
    if user.active:
        await driver.set_active(user, False)
    await driver.delete_user(user)


@dataclass(frozen=True, slots=True)
class CleanupOutcome:
    removed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Teardown:
    """What removing one check's test objects of one run uses: the ledger (of that run), the
    test identities (of that run) that prove what may be touched, the probe to confirm what
    the app still holds, and a driver for each channel that created something."""

    ledger: Ledger
    identities: TestIdentities
    run_id: str
    check_id: str
    probe: Probe | None
    #: The probe looks users up by email (else by directory user id).
    reads_by_email: bool
    #: Signed events can be sent (webhook configured): the last way left to deprovision a
    #: SCIM user that the app still shows active.
    can_send_events: bool
    open_driver: Callable[[Mode], ProvisioningDriver]


def teardown(
    config: Config,
    ledger: Ledger,
    identities: TestIdentities,
    check_id: str,
    probe: Probe | None,
    open_driver: Callable[[Mode], ProvisioningDriver],
) -> Teardown:
    """The teardown of check ``check_id`` in the run of ``identities``; what the probe can
    look up and whether events can be sent are read from ``config``."""
    return Teardown(
        ledger=ledger,
        identities=identities,
        run_id=identities.run_id,
        check_id=check_id,
        probe=probe,
        reads_by_email=probe_reads_by_email(config.probe),
        can_send_events=missing_for_mode(config, "events") is None,
        open_driver=open_driver,
    )


class _Drivers:
    """One driver per channel, opened on first use and closed together."""

    def __init__(self, teardown: Teardown) -> None:
        self._open = teardown.open_driver
        self._opened: dict[Mode, ProvisioningDriver] = {}

    def events(self) -> EventsDriver:
        driver = self._get("events")
        assert isinstance(driver, EventsDriver)  # noqa: S101 - narrowing
        return driver

    def scim(self) -> ScimDriver:
        driver = self._get("scim")
        assert isinstance(driver, ScimDriver)  # noqa: S101 - narrowing
        return driver

    def _get(self, channel: Mode) -> ProvisioningDriver:
        driver = self._opened.get(channel)
        if driver is None:
            driver = self._opened[channel] = self._open(channel)
        return driver

    async def aclose(self) -> None:
        for driver in self._opened.values():
            await driver.aclose()


def _identity_from_entry(
    identities: TestIdentities, run_id: str, entry: LedgerEntry | _SweepEntry
) -> TestIdentity:
    details = entry.details
    email = str(details.get("email") or "")
    return TestIdentity(
        label="cleanup",
        directory_user_id=entry.object_id,
        dp_id=str(details.get("dp_id") or f"{run_id}-cleanup"),
        email=email,
        given_name=str(details.get("given_name") or identities.name_prefix),
        family_name=str(details.get("family_name") or run_id),
    )


async def _remove_events_entry(
    driver: EventsDriver, entry: LedgerEntry, teardown: Teardown
) -> None:
    if entry.kind == "group":
        display_name = str(entry.details.get("display_name") or entry.object_id)
        await driver.delete_group(GroupRef(entry.object_id, display_name, test=True), ())
        return
    identity = _identity_from_entry(teardown.identities, teardown.run_id, entry)
    emails = _emails_ever(teardown.ledger, teardown.identities, entry)
    # Every email the identity ever had, the current one last: an app that keys users by
    # email holds a separate record under each earlier email, and each must lose access.
    for email in emails:
        user = DirectoryUser(
            identity=identity,
            handle=entry.object_id,
            email=email,
            given_name=identity.given_name,
            family_name=identity.family_name,
        )
        # Deactivate first: an app that ignores deletions still ends with no active test user.
        await driver.set_active(user, False)
        await driver.delete_user(user)
    if teardown.reads_by_email:
        await _confirm_no_active_user(teardown.probe, emails)


def _emails_ever(ledger: Ledger, identities: TestIdentities, entry: LedgerEntry) -> list[str]:
    """Each email the ledger recorded for ``entry``'s user in its run, oldest first; only
    test emails of that run (a line naming another address is refused before this)."""
    found: list[str] = []
    for item in ledger.entries():
        email = str(item.details.get("email") or "")
        if (
            item.run_id == entry.run_id
            and item.kind == "user"
            and item.object_id == entry.object_id
            and item.state == "created"
            and email
            and identities.is_test_email_of_run(email)
            and email not in found
        ):
            found.append(email)
    current = str(entry.details.get("email") or "")
    if current in found:
        found.remove(current)
    return [*found, current] if current else found


async def _confirm_no_active_user(probe: Probe | None, emails: Sequence[str]) -> None:
    """Where the probe can look users up by email, a user counts as removed only when the app
    shows no active user under any email it had; otherwise it stays outstanding."""
    if probe is None:
        return
    for email in emails:
        try:
            found = await probe.user_by_email(email)
        except ProbeError:
            continue  # the probe cannot say; the removal deliveries were accepted
        if found is not None and found.active:
            raise ValueError(f"the app still shows an active test user under {email}")


async def _scim_object_is_test_identity(
    driver: ScimDriver, names: TestIdentities, kind: str, object_id: str
) -> bool:
    """A SCIM id is assigned by the directory, so its name proves nothing: read the live
    resource and check that it carries this run's test naming before anything is removed.
    A resource that is already gone (404) is harmless to "remove" again."""
    path = f"/Groups/{object_id}" if kind == "group" else f"/Users/{object_id}"
    response = await driver.request("GET", path, ok_statuses=(404,))
    if response.status_code == 404:
        return True
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    if kind == "group":
        return names.is_test_group_name_of_run(str(body.get("displayName") or ""))
    emails = [str(body.get("userName") or "")]
    emails += [
        str(item.get("value") or "") for item in body.get("emails") or [] if isinstance(item, dict)
    ]
    present = [email for email in emails if email]
    return bool(present) and all(names.is_test_email_of_run(email) for email in present)


async def _remove_scim_entry(
    driver: ScimDriver, entry: LedgerEntry, names: TestIdentities, run_id: str
) -> None:
    object_id: str | None = entry.object_id
    if entry.details.get("lookup") == "userName":
        object_id = await driver.find_id("/Users", f'userName eq "{entry.object_id}"')
    elif entry.details.get("lookup") == "displayName":
        object_id = await driver.find_id("/Groups", f'displayName eq "{entry.object_id}"')
    if object_id is not None:
        if not await _scim_object_is_test_identity(driver, names, entry.kind, object_id):
            raise ValueError(
                f"REFUSED: the directory's {entry.kind} {object_id} is not named like a test "
                f"identity of run {run_id}, so it is a real one and was left alone"
            )
        if entry.kind == "group":
            await driver.request("DELETE", f"/Groups/{object_id}", ok_statuses=(404,))
        else:
            await driver.request(
                "PATCH",
                f"/Users/{object_id}",
                body=_patch_op({"op": "replace", "path": "active", "value": False}),
                ok_statuses=(404,),
            )
            await driver.request("DELETE", f"/Users/{object_id}", ok_statuses=(404,))
    driver._record_removed(entry.kind, entry.object_id)


async def close_never_accepted(
    ledger: Ledger, pending: Sequence[LedgerEntry], probe: Probe | None
) -> list[LedgerEntry]:
    """Close, as never created, the test users of this run that no delivery could have
    created (every delivery about them was refused or never sent) and that the app, where a
    probe is configured, does not hold: they are not left behind, and counting them would
    grow the "earlier runs left" warning with every run against a down endpoint."""

    kept: list[LedgerEntry] = []
    for entry in pending:
        if (
            entry.kind != "user"
            or entry.channel != "events"
            or not recorded_by_this_process(entry)
            or maybe_applied(entry.object_id)
        ):
            kept.append(entry)
            continue
        if probe is not None:
            try:
                present = await probe.user_by_id(entry.object_id) is not None
            except (ProbeError, OSError):
                present = True  # cannot prove absence: keep it for removal
            if present:
                kept.append(entry)
                continue
        ledger.never_created(
            entry.kind, entry.object_id, channel=entry.channel, check_id=entry.check_id
        )
    return kept


async def cleanup_outstanding(teardown: Teardown) -> CleanupOutcome:
    """Remove every user and group the check created in the run and has not removed yet,
    each through the channel that created it; users are deactivated, then deleted."""
    ledger, identities = teardown.ledger, teardown.identities
    entries = await close_never_accepted(
        ledger,
        [
            entry
            for entry in ledger.outstanding(teardown.run_id)
            if entry.check_id == teardown.check_id
            and entry.kind in ("user", "group")
            and identities.proves(entry)
        ],
        teardown.probe,
    )
    # Users before groups: deleting a group would otherwise send member updates for users
    # that are about to go anyway.
    entries.sort(key=lambda entry: (entry.kind != "user", entry.at))
    removed: list[str] = []
    failed: list[str] = []
    drivers = _Drivers(teardown)
    try:
        for entry in entries:
            label = f"{entry.kind} {entry.object_id} ({entry.channel})"
            try:
                if entry.channel == "events":
                    await _remove_events_entry(drivers.events(), entry, teardown)
                else:
                    await _remove_scim_entry(drivers.scim(), entry, identities, teardown.run_id)
                removed.append(label)
            except (ChangeRejected, ValueError) as exc:
                ledger.unremovable(
                    entry.kind,
                    entry.object_id,
                    channel=entry.channel,
                    check_id=teardown.check_id,
                    reason=str(exc),
                )
                failed.append(f"{label}: {exc}")
        if teardown.probe is not None and any(entry.channel == "scim" for entry in entries):
            await _sweep_app(teardown, drivers, removed, failed)
    finally:
        await drivers.aclose()
    return CleanupOutcome(tuple(removed), tuple(failed))


def _scim_users(teardown: Teardown) -> dict[str, str]:
    """Every email a SCIM-created test user of this check and run has had -> its SCIM id."""
    found: dict[str, str] = {}
    for entry in teardown.ledger.entries():
        if (
            entry.run_id == teardown.run_id
            and entry.check_id == teardown.check_id
            and entry.kind == "user"
            and entry.channel == "scim"
            and entry.state == "created"
            and entry.details.get("email")
            and entry.details.get("lookup") is None
            and teardown.identities.is_test_email_of_run(str(entry.details["email"]))
        ):
            found[str(entry.details["email"])] = entry.object_id
    return found


async def _sweep_app(
    teardown: Teardown, drivers: _Drivers, removed: list[str], failed: list[str]
) -> None:
    """Once a SCIM user is gone from the directory, the IdP has no way left to reach the app:
    if the app still shows it active (it ignored the deletion), deprovision it there directly
    with signed events, when the webhook is configured."""
    probe, by_email = teardown.probe, teardown.reads_by_email
    if probe is None or not teardown.can_send_events:
        return
    users = _scim_users(teardown)
    if not by_email:
        # Looked up by id, a user needs one lookup whatever emails it had (the last one wins).
        latest = {object_id: email for email, object_id in users.items()}
        users = {email: object_id for object_id, email in latest.items()}
    for email, object_id in sorted(users.items()):
        try:
            found = await (probe.user_by_email(email) if by_email else probe.user_by_id(object_id))
        except ProbeError as exc:
            failed.append(f"user {email}: could not be looked up in the app ({exc})")
            continue
        if found is None or not found.active:
            continue
        if not teardown.identities.is_test_email_of_run(found.email):
            continue  # the app's record is not a test identity of this run: never touched
        email = found.email
        seen = _SweepEntry(found.directory_user_id or found.id, email)
        identity = _identity_from_entry(teardown.identities, teardown.run_id, seen)
        user = DirectoryUser(
            identity=identity,
            handle=identity.directory_user_id,
            email=email,
            given_name=identity.given_name,
            family_name=identity.family_name,
        )
        try:
            events = drivers.events()
            await events.set_active(user, False)
            await events.delete_user(user, mark_removed=False)
            removed.append(f"user {email} (still active in the app; deprovisioned by event)")
        except ChangeRejected as exc:
            failed.append(f"user {email}: still active in the app, and {exc}")


@dataclass(frozen=True, slots=True)
class _SweepEntry:
    object_id: str
    email: str

    @property
    def details(self) -> Mapping[str, Any]:
        return {"email": self.email}


def probe_reads_by_email(section: ProbeSection | None) -> bool:
    """Whether the probe ``section`` configures can look users up by email (else by
    directory user id)."""
    if section is None:
        return True
    kind = section.http if section.kind == "http" else section.command
    if kind is None or kind.user_by_email is not None:
        return True
    # A list-only probe scans the list, where the email is the one fact every app keeps.
    return kind.user_by_id is None and kind.list_users is not None
