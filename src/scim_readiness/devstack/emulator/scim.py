"""SCIM 2.0 per directory, as an IdP sees it: ``/directory/{id}/scim/v2/...``.

The protocol (discovery, validation, PATCH and PUT semantics, filters, ``attributes`` /
``excludedAttributes``, paging, error bodies) is scim2-server's; this module is the storage
it reads and writes, so every change still goes through the emulator state, which emits
the matching Scalekit event. The resource an IdP sent is kept whole (``DirUser.raw``), so
every core and enterprise attribute is returned as stored and ``raw_attributes`` follows
each change; the fields Scalekit normalises (email, names, HR fields) are derived from it.

Bearer-token protected (the directory's token, while one of its secrets is ACTIVE), every
path included, discovery too: a directory's endpoint is private to its IdP.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, Union

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from scim_readiness.devstack.emulator.state import (
    Conflict,
    Directory,
    DirGroup,
    DirUser,
    NotFound,
    rfc3339,
)

if TYPE_CHECKING:
    from scim2_models import Resource, ResourceType, ScimProvider
    from scim2_server.service import ScimService
    from scim2_server.storage import SearchPage

    from scim_readiness.devstack.emulator.state import EmulatorState

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MAX_BODY = 1024 * 1024
MAX_RESULTS = 1000
# Kept by the state itself, never from what the client sent.
_SERVER_OWNED = ("id", "meta", "groups", "password")
# The lookup IdPs make before every create: answered from the userName index.
_USER_NAME_EQ = re.compile(r'^\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_log = logging.getLogger(__name__)


@cache
def provider() -> ScimProvider:
    """What the endpoint announces: RFC 7643's User (with the enterprise extension) and
    Group, PATCH and filters; no bulk, sort, ETags or password changes (Scalekit's IdPs
    use none of them)."""
    from scim2_models import (
        AuthenticationScheme,
        Bulk,
        ChangePassword,
        ETag,
        Filter,
        Patch,
        ScimProvider,
        ServiceProviderConfig,
        Sort,
    )
    from scim2_server.utils import load_default_resource_types, load_default_schemas

    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description="The directory's SCIM token",
                primary=True,
            )
        ],
    )
    return ScimProvider.from_discovery(
        load_default_schemas().values(),
        load_default_resource_types().values(),
        config=config,
        policy=idp_tolerance(),
    )


@cache
def service() -> ScimService:
    from scim2_models import Context
    from scim2_server.service import ScimService

    class DirectoryService(ScimService):
        def patch_response(self, base_url: str, resource: Any, response_parameters: Any) -> Any:
            # RFC 7644 §3.5.2 allows 204; Okta requires 200 with the whole resource, and
            # every IdP accepts it.
            return self.resource_response(
                self.publish(base_url, resource),
                Context.RESOURCE_REPLACEMENT_RESPONSE,
                response_parameters,
            )

    return DirectoryService(provider())


# -- from a SCIM resource to the fields Scalekit normalises ------------------------------------


def _primary(values: Any) -> dict[str, Any] | None:
    """The primary item of a multi-valued attribute, else its first; None when empty."""
    items = [v for v in values or [] if isinstance(v, dict)]
    return next((v for v in items if v.get("primary") is True), items[0] if items else None)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _address(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    keys = ("formatted", "streetAddress", "locality", "region", "postalCode", "country")
    out = {key: value[key] for key in keys if _text(value.get(key))}
    return out or None


# SCIM attribute -> the top-level field of Scalekit's user events (domain §4).
_CORE_FIELDS = {
    "title": "title",
    "nickName": "nickname",
    "profileUrl": "profile",
    "userType": "user_type",
    "locale": "locale",
    "preferredLanguage": "language",
    "timezone": "zoneinfo",
}
_ENTERPRISE_FIELDS = {
    "department": "department",
    "employeeNumber": "employee_id",
    "costCenter": "cost_center",
    "division": "division",
    "organization": "organization",
}


def user_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The DirUser fields a stored User resource describes. Nothing is made up: a user
    without emails has no email, one without externalId no dp_id."""
    name = document.get("name") or {}
    email = _primary(document.get("emails"))
    attributes: dict[str, Any] = {
        field: document[key] for key, field in _CORE_FIELDS.items() if _text(document.get(key))
    }
    enterprise = document.get(ENTERPRISE) or {}
    attributes.update(
        (field, enterprise[key]) for key, field in _ENTERPRISE_FIELDS.items() if enterprise.get(key)
    )
    phone = _primary(document.get("phoneNumbers"))
    photo = _primary(document.get("photos"))
    address = _address(_primary(document.get("addresses")))
    found = {
        "phone_number": phone and _text(phone.get("value")),
        "picture": photo and _text(photo.get("value")),
        "address": address,
    }
    attributes.update({field: value for field, value in found.items() if value})
    return {
        "user_name": str(document.get("userName", "")).strip(),
        "email": (email and _text(email.get("value"))) or "",
        "given_name": _text(name.get("givenName")) or "",
        "family_name": _text(name.get("familyName")) or "",
        "display_name": _text(document.get("displayName")) or "",
        "active": document.get("active") is not False,
        "dp_id": _text(document.get("externalId")) or "",
        "attributes": attributes or None,
    }


def _client_document(resource: Resource[Any]) -> dict[str, Any]:
    # A password may come with a create; it must never travel on in raw_attributes.
    document = resource.model_dump(mode="json", exclude_none=True)
    for key in _SERVER_OWNED:
        document.pop(key, None)
    return document


def _version(updated_at: float) -> str:
    return f'W/"{int(updated_at * 1_000_000)}"'


def user_document(directory: Directory, user: DirUser) -> dict[str, Any]:
    """The stored User resource (what GET answers before projection)."""
    if user.raw is not None:
        document = dict(user.raw)
    else:  # seeded or generated: described by its fields alone
        document = {"schemas": [USER_SCHEMA], "userName": user.user_name}
        name = {"givenName": user.given_name, "familyName": user.family_name}
        document["name"] = {key: value for key, value in name.items() if value}
        if user.email:
            document["emails"] = [{"value": user.email, "primary": True, "type": "work"}]
        if user.dp_id:
            document["externalId"] = user.dp_id
        attrs = user.attributes or {}
        document.update(
            {key: attrs[field] for key, field in _CORE_FIELDS.items() if field in attrs}
        )
        if "phone_number" in attrs:
            document["phoneNumbers"] = [{"value": attrs["phone_number"], "primary": True}]
        enterprise = {
            key: attrs[field] for key, field in _ENTERPRISE_FIELDS.items() if field in attrs
        }
        if enterprise:
            document["schemas"] = [USER_SCHEMA, ENTERPRISE]
            document[ENTERPRISE] = enterprise
    # The state may change these outside SCIM (the API, tests): the state wins.
    document["userName"] = user.user_name
    if "active" in document or not user.active:  # a removed `active` stays removed
        document["active"] = user.active
    document["id"] = user.id
    groups = [(gid, directory.groups[gid]) for gid in user.groups if gid in directory.groups]
    if groups:
        document["groups"] = [
            {"value": gid, "display": g.display_name, "$ref": f"Groups/{gid}", "type": "direct"}
            for gid, g in groups
        ]
    document["meta"] = {
        "resourceType": "User",
        "created": rfc3339(user.created_at),
        "lastModified": rfc3339(user.updated_at),
        "version": _version(user.updated_at),
    }
    return document


def group_document(directory: Directory, group: DirGroup) -> dict[str, Any]:
    document = dict(group.raw or {})
    document.setdefault("schemas", [GROUP_SCHEMA])
    document["id"] = group.id
    document["displayName"] = group.display_name
    document.pop("externalId", None)
    if group.external_id:
        document["externalId"] = group.external_id
    # The display an IdP sent for a member is kept, as any attribute it sends is.
    sent = {
        m.get("value"): m.get("display")
        for m in document.pop("members", None) or []
        if isinstance(m, dict) and m.get("display")
    }
    members = [directory.users[uid] for uid in group.members if uid in directory.users]
    if members:
        document["members"] = [
            {
                "value": user.id,
                "display": sent.get(user.id) or user.display_name or user.user_name,
                "$ref": f"Users/{user.id}",
                "type": "User",
            }
            for user in members
        ]
    document["meta"] = {
        "resourceType": "Group",
        "created": rfc3339(group.created_at or group.updated_at),
        "lastModified": rfc3339(group.updated_at),
        "version": _version(group.updated_at),
    }
    return document


# -- the storage scim2-server reads and writes ----------------------------------------------


def _storage_class() -> type[Any]:
    from scim2_models import (
        InvalidValueException,
        NotFoundException,
        ScimFilter,
        UniquenessException,
    )
    from scim2_server.storage import ScimStorage, SearchPage
    from scim2_server.utils import parametrize

    class DirectoryStorage(ScimStorage):
        """One directory's users and groups, read and changed through the emulator state."""

        def __init__(self, state: EmulatorState, directory: Directory) -> None:
            self.state = state
            self.directory = directory

        @contextmanager
        def operation(self) -> Iterator[None]:
            with self.state.lock:
                yield

        def _model(self, resource_type: ResourceType, document: dict[str, Any]) -> Any:
            return service().get_model(resource_type).model_validate(document)

        def _user(self, user_id: str | None) -> DirUser:
            try:
                return self.state.user(self.directory, str(user_id))
            except NotFound:
                raise NotFoundException(detail=f"User {user_id!r} not found") from None

        def _group(self, group_id: str | None) -> DirGroup:
            try:
                return self.state.group(self.directory, str(group_id))
            except NotFound:
                raise NotFoundException(detail=f"Group {group_id!r} not found") from None

        def _document(self, resource_type: ResourceType, resource_id: str | None) -> Any:
            if resource_type.name == "User":
                return user_document(self.directory, self._user(resource_id))
            return group_document(self.directory, self._group(resource_id))

        def get(
            self,
            resource_type: ResourceType,
            resource_id: str,
            *,
            response_parameters: Any = None,
        ) -> Resource[Any]:
            with self.state.lock:
                document = self._document(resource_type, resource_id)
            resource: Resource[Any] = self._model(resource_type, document)
            return resource

        def _candidates(self, resource_type: ResourceType, text: str | None) -> list[Any]:
            directory = self.directory
            if resource_type.name == "Group":
                return [group_document(directory, g) for g in directory.groups.values()]
            match = _USER_NAME_EQ.match(text or "")
            if match is not None:
                found = directory.by_user_name.get(match.group(1).replace('\\"', '"').lower())
                users = [directory.users[found]] if found else []
            else:
                users = list(directory.users.values())
            return [user_document(directory, u) for u in users]

        def search(
            self,
            resource_types: list[ResourceType],
            search_request: Any,
            *,
            position: Any = None,
        ) -> SearchPage:
            scim_filter = search_request.filter
            text = str(scim_filter) if scim_filter is not None else None
            start = search_request.start_index_0 or 0
            count = MAX_RESULTS if search_request.count is None else search_request.count
            with self.state.lock:
                if text is None and [rt.name for rt in resource_types] == ["User"]:
                    # No filter: build only the page (a directory may hold 100,000 users).
                    users = list(self.directory.users.values())
                    page = [
                        self._model(resource_types[0], user_document(self.directory, u))
                        for u in users[start : start + count]
                    ]
                    return SearchPage(len(users), page)
                found = [
                    self._model(rt, document)
                    for rt in resource_types
                    for document in self._candidates(rt, text)
                ]
            if scim_filter is not None and found:
                if not scim_filter.models:
                    models = tuple(dict.fromkeys(type(r) for r in found))
                    scim_filter = parametrize(ScimFilter, Union[models])(text)  # noqa: UP007
                found = [r for r in found if scim_filter.match(r)]
            return SearchPage(len(found), found[start : start + count])

        def _member_ids(self, document: dict[str, Any]) -> list[str]:
            ids = [m.get("value") for m in document.get("members") or []]
            for member in ids:
                if member not in self.directory.users:
                    raise InvalidValueException(
                        detail=f"member {member} is not a user of this directory"
                    )
            return [str(member) for member in ids]

        def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
            document = _client_document(resource)
            with self.state.lock:
                try:
                    if resource_type.name == "User":
                        fields = user_fields(document)
                        dp_id = fields.pop("dp_id")
                        created: Any = self.state.create_user(
                            self.directory, raw=document, external_id=dp_id, **fields
                        )
                    else:
                        members = self._member_ids(document)
                        created = self.state.create_group(
                            self.directory,
                            display_name=str(document.get("displayName", "")).strip(),
                            external_id=document.get("externalId") or None,
                            raw=document,
                        )
                        self.state.set_members(self.directory, created, add=members)
                except Conflict as exc:
                    raise UniquenessException(detail=str(exc)) from None
                return self.get(resource_type, created.id)

        def update(
            self,
            resource_type: ResourceType,
            resource: Resource[Any],
            *,
            expected_version: str | None = None,
        ) -> Resource[Any]:
            document = _client_document(resource)
            with self.state.lock:
                try:
                    if resource_type.name == "User":
                        user = self._user(resource.id)
                        self.state.update_user(
                            self.directory, user, raw=document, **user_fields(document)
                        )
                    else:
                        group = self._group(resource.id)
                        members = self._member_ids(document)
                        self.state.update_group(
                            self.directory,
                            group,
                            display_name=str(document.get("displayName", "")).strip(),
                            external_id=document.get("externalId") or None,
                            raw=document,
                            members=members,
                        )
                except Conflict as exc:
                    raise UniquenessException(detail=str(exc)) from None
                return self.get(resource_type, str(resource.id))

        def delete(
            self,
            resource_type: ResourceType,
            resource_id: str,
            *,
            expected_version: str | None = None,
        ) -> None:
            with self.state.lock:
                if resource_type.name == "User":
                    self.state.delete_user(self.directory, self._user(resource_id))
                else:
                    self.state.delete_group(self.directory, self._group(resource_id))

    return DirectoryStorage


@cache
def storage_class() -> type[Any]:
    return _storage_class()


# -- HTTP --------------------------------------------------------------------------------------


def _to_response(answer: Any) -> Response:
    body = b"" if answer.body is None else json.dumps(answer.body).encode()
    return Response(body, status_code=int(answer.status), headers=answer.headers)


def _authorize(state: EmulatorState, request: Request) -> Directory:
    from scim2_models import ForbiddenException, UnauthorizedException

    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not token:
        raise UnauthorizedException(detail="a bearer token is required")
    directory = state.directory_by_token(request.path_params["directory_id"], token)
    if directory is None:
        raise UnauthorizedException(detail="the bearer token is not valid for this directory")
    if not directory.enabled:
        raise ForbiddenException(detail="the directory is disabled")
    return directory


@cache
def idp_tolerance() -> Any:
    """What Scalekit accepts from the IdPs it supports beyond the strict RFC reading: Microsoft
    Entra removes group members with a ``value`` listing them (not a path filter), and
    replaces an entry of a multi-valued attribute it names by filter before it exists."""
    from scim2_models import ScimPolicy

    return ScimPolicy(
        remove_value_as_filter=ScimPolicy.RemoveValue.apply,
        unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
    )


def scim_routes(state: EmulatorState) -> list[BaseRoute]:
    base = "/directory/{directory_id}/scim/v2"

    async def endpoint(request: Request) -> Response:
        from scim2_models import PayloadTooLargeException
        from scim2_server.handler import ScimHandler
        from scim2_server.requests import ScimRequest

        scim = service()
        directory_id = request.path_params["directory_id"]
        scim_request = ScimRequest(
            method=request.method,
            base_url=f"{state.base_url}/directory/{directory_id}/scim/v2",
            path="/" + request.path_params.get("path", ""),
            query=dict(request.query_params),
            headers=list(request.headers.items()),
        )
        try:
            directory = _authorize(state, request)
            body = await request.body()
            if len(body) > MAX_BODY:
                raise PayloadTooLargeException(detail=f"the body is larger than {MAX_BODY} bytes")
            scim_request.body = body
            handler = ScimHandler(scim, storage_class()(state, directory))
            answer = handler.handle(scim_request)
        except Exception as exc:  # noqa: BLE001 - every failure is a SCIM error body
            from scim2_models import SCIMException

            if not isinstance(exc, SCIMException):  # a bug here: a 500, and the traceback
                _log.exception("SCIM %s %s failed", request.method, request.url.path)
            answer = scim.error_response(exc)
        return _to_response(answer)

    return [
        Route(base, endpoint, methods=_METHODS),
        Route(base + "/{path:path}", endpoint, methods=_METHODS),
    ]
