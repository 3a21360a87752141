"""The gRPC services the SDK calls, implemented on the SDK's own generated servicer classes.

Served by a synchronous ``grpc.server`` (worker threads), behind the TLS front. Each method
checks the bearer token first (UNAUTHENTICATED otherwise), validates its request as the real
API does (page size 1–30, INVALID_ARGUMENT above), and answers NOT_FOUND for unknown ids.
"""

from __future__ import annotations

import base64
import binascii
import functools
import threading
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import struct_pb2, timestamp_pb2
from scalekit.v1.directories import directories_pb2 as dpb
from scalekit.v1.directories import directories_pb2_grpc as dgrpc
from scalekit.v1.organizations import organizations_pb2 as opb
from scalekit.v1.organizations import organizations_pb2_grpc as ogrpc
from scalekit.v1.roles import roles_pb2 as rpb
from scalekit.v1.roles import roles_pb2_grpc as rgrpc

from scim_readiness.devstack.emulator.state import (
    Directory,
    DirGroup,
    DirUser,
    EmulatorState,
    NotFound,
    Organization,
)

MAX_PAGE_SIZE = 30
DEFAULT_PAGE_SIZE = 10

Handler = Callable[..., Any]


def _ts(epoch: float | None) -> timestamp_pb2.Timestamp | None:
    if epoch is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(epoch * 1_000_000_000))
    return stamp


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    value = struct_pb2.Struct()
    value.update(data)
    return value


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"after:{seq}".encode()).decode().rstrip("=")


def _decode_token(token: str, context: grpc.ServicerContext) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, seq = text.partition(":")
        if kind != "after":
            raise ValueError(kind)
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid page_token")
        raise  # unreachable: abort raises


class Services:
    """Shared plumbing: auth, fault injection (delays), lookups that map to NOT_FOUND."""

    def __init__(self, state: EmulatorState, stopping: threading.Event) -> None:
        self.state = state
        self.stopping = stopping
        # method name -> seconds to stall before answering (tests of "a hung method")
        self.delays: dict[str, float] = {}

    def guard(self, name: str, context: grpc.ServicerContext) -> None:
        tokens = [
            str(value)
            for key, value in context.invocation_metadata()
            if key.lower() == "authorization"
        ]
        # The SDK sends its token twice (call credentials and explicit metadata); after a
        # refresh the two differ, and any one valid token is enough.
        valid = any(
            value[7:].strip() and self.state.token_valid(value[7:].strip())
            for value in tokens
            if value[:7].lower() == "bearer "
        )
        if not valid:
            reason = "token expired or invalid" if tokens else "missing bearer token"
            context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)
        delay = self.delays.get(name)
        if delay:
            self.stopping.wait(delay)

    def not_found(self, context: grpc.ServicerContext, exc: NotFound) -> None:
        context.abort(grpc.StatusCode.NOT_FOUND, str(exc))


def _rpc(method: Handler) -> Handler:
    """Authenticate, then run under the state lock; NotFound becomes NOT_FOUND."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        services: Services = self.services
        services.guard(method.__name__, context)
        try:
            with services.state.lock:
                return method(self, request, context)
        except NotFound as exc:
            services.not_found(context, exc)

    return wrapper


def _check_page_size(size: int, context: grpc.ServicerContext, message: str) -> int:
    if size > MAX_PAGE_SIZE:
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"invalid {message}.page_size: value must be less than or equal to {MAX_PAGE_SIZE}",
        )
    return size or DEFAULT_PAGE_SIZE


def _require(context: grpc.ServicerContext, **fields: str) -> None:
    for name, value in fields.items():
        if not value:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name} is required")


def organization_message(org: Organization) -> opb.Organization:
    return opb.Organization(
        id=org.id,
        create_time=_ts(org.created_at),
        update_time=_ts(org.created_at),
        display_name=org.display_name,
        external_id=org.external_id,
        metadata=org.metadata,
        settings=opb.OrganizationSettings(
            features=[
                opb.OrganizationSettingsFeature(name=name, enabled=enabled)
                for name, enabled in org.features.items()
            ]
        ),
    )


class OrganizationService(ogrpc.OrganizationServiceServicer):  # type: ignore[misc]
    def __init__(self, services: Services) -> None:
        self.services = services

    @_rpc
    def GetOrganization(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        state = self.services.state
        if request.id:
            org = state.organization(request.id)
        elif request.external_id:
            org = state.organization_by_external_id(request.external_id)
        else:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "id or external_id is required")
        return opb.GetOrganizationResponse(organization=organization_message(org))

    @_rpc
    def GetOrganizationByExternalId(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        _require(context, external_id=request.external_id)
        org = self.services.state.organization_by_external_id(request.external_id)
        return opb.GetOrganizationResponse(organization=organization_message(org))

    @_rpc
    def ListOrganization(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        size = request.page_size or DEFAULT_PAGE_SIZE
        if size > 100:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "invalid ListOrganizationsRequest.page_size: "
                "value must be less than or equal to 100",
            )
        orgs = [
            org
            for org in self.services.state.organizations.values()
            if not request.external_id or org.external_id == request.external_id
        ]
        start = _decode_token(request.page_token, context)
        page = orgs[start : start + size]
        more = start + size < len(orgs)
        return opb.ListOrganizationsResponse(
            organizations=[organization_message(org) for org in page],
            total_size=len(orgs),
            next_page_token=_encode_token(start + size) if more else "",
            prev_page_token=_encode_token(max(start - size, 0)) if start else "",
        )

    @_rpc
    def GeneratePortalLink(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        _require(context, id=request.id)
        names = [opb.Feature.Name(feature) for feature in request.features]
        if request.directory_sync:
            names.append("dir_sync")
        if request.sso:
            names.append("sso")
        state = self.services.state
        link = state.new_portal_link(request.id, tuple(dict.fromkeys(names)))
        domain = state.seed.portal.domain
        base = f"https://{domain}" if domain else state.base_url
        return opb.GeneratePortalLinkResponse(
            link=opb.Link(
                id=link.id, location=f"{base}/portal/{link.token}", expire_time=_ts(link.expires_at)
            )
        )


def directory_message(state: EmulatorState, directory: Directory) -> dpb.Directory:
    by_id = directory.groups
    role_ids = {role.name: role.id for role in state.roles.values()}
    return dpb.Directory(
        id=directory.id,
        name=directory.name,
        directory_type=dpb.SCIM,
        organization_id=directory.organization_id,
        enabled=directory.enabled,
        directory_provider=dpb.DirectoryProvider.Value(directory.provider),
        last_synced_at=_ts(directory.last_synced_at),
        directory_endpoint=f"{state.base_url}/directory/{directory.id}/scim/v2",
        total_users=len(directory.users),
        total_groups=len(by_id),
        secrets=[
            dpb.Secret(
                id=secret.id,
                create_time=_ts(secret.create_time),
                secret_suffix=secret.suffix,
                status=dpb.SecretStatus.Value(secret.status),
                expire_time=_ts(secret.expire_time),
                last_used_time=_ts(secret.last_used_time),
                directory_id=directory.id,
            )
            for secret in directory.secrets
        ],
        stats=dpb.Stats(
            total_users=len(directory.users),
            total_groups=len(by_id),
            user_updated_at=_ts(directory.user_updated_at),
            group_updated_at=_ts(directory.group_updated_at),
        ),
        role_assignments=dpb.RoleAssignments(
            assignments=[
                dpb.RoleAssignment(
                    group_id=group_id, role_name=role, role_id=role_ids.get(role, "")
                )
                for group_id, role in directory.assignments()
            ]
        ),
        attribute_mappings=dpb.AttributeMappings(
            attributes=[
                dpb.AttributeMapping(key=key, map_to=map_to)
                for key, map_to in directory.attribute_mappings.items()
            ]
        ),
        status="COMPLETED",
    )


def user_message(
    state: EmulatorState, directory: Directory, user: DirUser, detail: bool
) -> dpb.DirectoryUser:
    message = dpb.DirectoryUser(
        id=user.id,
        email=user.email,
        preferred_username=user.user_name,
        given_name=user.given_name,
        family_name=user.family_name,
        updated_at=_ts(user.updated_at),
        emails=[user.email],
        groups=[
            dpb.DirectoryGroup(id=gid, display_name=directory.groups[gid].display_name)
            for gid in user.groups
            if gid in directory.groups
        ],
    )
    if detail:
        # The full normalised user, as events carry it (active, roles, dp_id, name, …).
        message.user_detail.CopyFrom(_struct(state.user_data(directory, user)))
    return message


def group_message(directory: Directory, group: DirGroup, detail: bool) -> dpb.DirectoryGroup:
    message = dpb.DirectoryGroup(
        id=group.id,
        display_name=group.display_name,
        total_users=len(group.members),
        updated_at=_ts(group.updated_at),
    )
    if detail:
        data: dict[str, Any] = {
            "id": group.id,
            "display_name": group.display_name,
            "dp_id": group.dp_id,
            "external_id": group.external_id,
            "role": directory.group_roles(group),
        }
        message.group_detail.CopyFrom(_struct(data))
    return message


class DirectoryService(dgrpc.DirectoryServiceServicer):  # type: ignore[misc]
    def __init__(self, services: Services) -> None:
        self.services = services

    @_rpc
    def ListDirectories(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        _require(context, organization_id=request.organization_id)
        state = self.services.state
        state.organization(request.organization_id)
        return dpb.ListDirectoriesResponse(
            directories=[
                directory_message(state, directory)
                for directory in state.directories.values()
                if directory.organization_id == request.organization_id
            ]
        )

    @_rpc
    def GetDirectory(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        _require(context, organization_id=request.organization_id, id=request.id)
        state = self.services.state
        directory = state.directory(request.id, request.organization_id)
        return dpb.GetDirectoryResponse(directory=directory_message(state, directory))

    @_rpc
    def ListDirectoryUsers(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        _require(
            context, organization_id=request.organization_id, directory_id=request.directory_id
        )
        size = _check_page_size(request.page_size, context, "ListDirectoryUsersRequest")
        state = self.services.state
        directory = state.directory(request.directory_id, request.organization_id)
        keep: Callable[[DirUser], bool] | None = None
        group_id = request.directory_group_id
        after = (
            request.updated_after.ToNanoseconds() / 1e9
            if request.HasField("updated_after")
            else None
        )
        if group_id:
            members = state.group(directory, group_id).members
        if group_id or after is not None:

            def keep(user: DirUser) -> bool:
                if group_id and user.id not in members:
                    return False
                return after is None or user.updated_at > after

        users, next_seq = state.page(
            directory.user_seqs,
            directory.user_order,
            directory.users,
            _decode_token(request.page_token, context),
            size,
            keep,
        )
        total = (
            len(directory.users)
            if keep is None
            else sum(1 for user in directory.users.values() if keep(user))
        )
        return dpb.ListDirectoryUsersResponse(
            users=[user_message(state, directory, u, request.include_detail) for u in users],
            total_size=total,
            next_page_token=_encode_token(next_seq) if next_seq is not None else "",
            prev_page_token=request.page_token,
        )

    @_rpc
    def ListDirectoryGroups(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        _require(
            context, organization_id=request.organization_id, directory_id=request.directory_id
        )
        size = _check_page_size(request.page_size, context, "ListDirectoryGroupsRequest")
        state = self.services.state
        directory = state.directory(request.directory_id, request.organization_id)
        groups, next_seq = state.page(
            directory.group_seqs,
            directory.group_order,
            directory.groups,
            _decode_token(request.page_token, context),
            size,
        )
        return dpb.ListDirectoryGroupsResponse(
            groups=[group_message(directory, g, request.include_detail) for g in groups],
            total_size=len(directory.groups),
            next_page_token=_encode_token(next_seq) if next_seq is not None else "",
            prev_page_token=request.page_token,
        )

    def _toggle(self, request: Any, context: grpc.ServicerContext, enabled: bool) -> Any:
        _require(context, organization_id=request.organization_id, id=request.id)
        state = self.services.state
        directory = state.directory(request.id, request.organization_id)
        state.set_directory_enabled(directory, enabled)
        return dpb.ToggleDirectoryResponse(enabled=directory.enabled)

    @_rpc
    def EnableDirectory(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._toggle(request, context, True)

    @_rpc
    def DisableDirectory(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._toggle(request, context, False)


class RolesService(rgrpc.RolesServiceServicer):  # type: ignore[misc]
    def __init__(self, services: Services) -> None:
        self.services = services

    @_rpc
    def ListRoles(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return rpb.ListRolesResponse(
            roles=[
                rpb.Role(
                    id=role.id,
                    name=role.name,
                    display_name=role.display_name,
                    description=role.description,
                )
                for role in self.services.state.roles.values()
            ]
        )


#: The real backend's keepalive policy, as the official SDKs describe it: clients may ping
#: every 30 s, with or without calls in flight (the Python SDK pings every 60 s); an idle
#: connection is closed after 5 minutes. gRPC's server default (5 min between pings, none
#: without calls) answered the SDK's pings with GOAWAY too_many_pings.
KEEPALIVE_MIN_PING_INTERVAL_MS = 30_000
MAX_CONNECTION_IDLE_MS = 300_000
KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_MIN_PING_INTERVAL_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_connection_idle_ms", MAX_CONNECTION_IDLE_MS),
)


def build_grpc_server(services: Services, *, workers: int = 16) -> tuple[grpc.Server, int]:
    """A started gRPC server on an internal loopback port (plain h2c: the TLS front terminates
    TLS). Returns the server and its port."""
    from concurrent.futures import ThreadPoolExecutor

    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emulator-grpc"),
        options=KEEPALIVE_OPTIONS,
    )
    ogrpc.add_OrganizationServiceServicer_to_server(OrganizationService(services), server)
    dgrpc.add_DirectoryServiceServicer_to_server(DirectoryService(services), server)
    rgrpc.add_RolesServiceServicer_to_server(RolesService(services), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port
