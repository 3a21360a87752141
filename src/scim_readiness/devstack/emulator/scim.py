"""SCIM 2.0 per directory, as an IdP sees it: ``/directory/{id}/scim/v2/Users`` and ``/Groups``.

Bearer-token protected (the directory's token, while one of its secrets is ACTIVE). Payloads
are validated with scim2-models; errors are SCIM error bodies (RFC 7644 §3.12). Every change
goes through the emulator state, which emits the matching Scalekit event.

PATCH accepts the shapes real IdPs send: Okta's ``{"op": "replace", "value": {"active":
false}}``, Entra's ``{"op": "Replace", "path": "active", "value": "False"}``, member
removal both as ``members[value eq "…"]`` and as ``path: members`` with a value list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
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
    from scim_readiness.devstack.emulator.state import EmulatorState

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_BODY = 1024 * 1024

_FILTER = re.compile(r'^\s*(\w+(?:\.\w+)?)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
_MEMBER_PATH = re.compile(r'^members\[\s*value\s+eq\s+"([^"]+)"\s*\]$', re.IGNORECASE)


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def response(self) -> Response:
        body: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        headers = {"www-authenticate": 'Bearer realm="scim"'} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, media_type=SCIM_JSON, headers=headers)


def _scim(body: dict[str, Any], status: int = 200, location: str | None = None) -> Response:
    headers = {"location": location} if location else None
    return JSONResponse(body, status_code=status, media_type=SCIM_JSON, headers=headers)


def _bool(value: Any, field: str) -> bool:
    # Entra sends booleans as strings in PATCH ("False").
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ScimError(400, f"{field} must be a boolean", "invalidValue")


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ScimError(400, f"{field} must be a string", "invalidValue")
    return value


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ScimError(413, f"the body is larger than {MAX_BODY} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ScimError(400, "the body is not valid JSON", "invalidSyntax") from None
    if not isinstance(data, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    return data


def _validate(model: Any, data: dict[str, Any]) -> Any:
    from pydantic import ValidationError
    from scim2_models import Context

    try:
        return model.model_validate(data, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ScimError(400, f"{where}: {first['msg']}", "invalidValue") from None


def _primary_email(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise ScimError(400, "emails must be a list of {value, primary} objects", "invalidValue")
    emails = [e for e in value if isinstance(e.get("value"), str) and e["value"].strip()]
    if not emails:
        return None
    primary = next((e for e in emails if e.get("primary") is True), emails[0])
    address = str(primary["value"]).strip()
    local, at, domain = address.partition("@")
    if not (local and at and domain) or " " in address:
        raise ScimError(400, f"emails.value: {address!r} is not an email address", "invalidValue")
    return address


def _user_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The directory-user fields a full User resource (POST/PUT) describes."""
    from scim2_models import EnterpriseUser, User

    # Emails are read by hand: scim2-models validates them with email-validator, which
    # refuses special-use domains (.invalid, .test) that Scalekit itself stores as given.
    primary_email = _primary_email(data.get("emails"))
    resource = _validate(User[EnterpriseUser], {k: v for k, v in data.items() if k != "emails"})
    if not resource.user_name or not resource.user_name.strip():
        raise ScimError(400, "userName is required", "invalidValue")
    attributes: dict[str, Any] = {}
    if resource.title:
        attributes["title"] = resource.title
    enterprise = resource[EnterpriseUser] if ENTERPRISE in data else None
    if enterprise is not None:
        if enterprise.department:
            attributes["department"] = enterprise.department
        if enterprise.employee_number:
            attributes["employee_id"] = enterprise.employee_number
        if enterprise.cost_center:
            attributes["custom_attributes"] = {"cost_center": enterprise.cost_center}
    return {
        "user_name": resource.user_name.strip(),
        "email": (primary_email or resource.user_name).strip(),
        "given_name": (resource.name.given_name if resource.name else None) or "",
        "family_name": (resource.name.family_name if resource.name else None) or "",
        "display_name": resource.display_name or "",
        "active": True if resource.active is None else bool(resource.active),
        "external_id": resource.external_id or "",
        "attributes": attributes,
    }


class ScimApi:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # -- plumbing ---------------------------------------------------------------------------

    def directory(self, request: Request) -> Directory:
        header = request.headers.get("authorization", "")
        if header[:7].lower() != "bearer " or not header[7:].strip():
            raise ScimError(401, "a bearer token is required")
        directory = self.state.directory_by_token(
            request.path_params["directory_id"], header[7:].strip()
        )
        if directory is None:
            raise ScimError(401, "the bearer token is not valid for this directory")
        if not directory.enabled:
            raise ScimError(403, "the directory is disabled")
        return directory

    def base(self, request: Request, directory: Directory) -> str:
        return f"{self.state.base_url}/directory/{directory.id}/scim/v2"

    def user_resource(
        self, request: Request, directory: Directory, user: DirUser
    ) -> dict[str, Any]:
        location = f"{self.base(request, directory)}/Users/{user.id}"
        resource: dict[str, Any] = {
            "schemas": [USER_SCHEMA],
            "id": user.id,
            "externalId": user.dp_id,
            "userName": user.user_name,
            "name": {
                "givenName": user.given_name,
                "familyName": user.family_name,
                "formatted": user.name,
            },
            "displayName": user.display_name or user.name,
            "emails": [{"value": user.email, "primary": True, "type": "work"}],
            "active": user.active,
            "groups": [
                {"value": gid, "display": directory.groups[gid].display_name}
                for gid in user.groups
                if gid in directory.groups
            ],
            "meta": {
                "resourceType": "User",
                "created": rfc3339(user.created_at),
                "lastModified": rfc3339(user.updated_at),
                "location": location,
            },
        }
        attrs = user.attributes or {}
        if "title" in attrs:
            resource["title"] = attrs["title"]
        enterprise = {
            key: attrs[source]
            for key, source in (("department", "department"), ("employeeNumber", "employee_id"))
            if source in attrs
        }
        if enterprise:
            resource["schemas"] = [USER_SCHEMA, ENTERPRISE]
            resource[ENTERPRISE] = enterprise
        return resource

    def group_resource(
        self, request: Request, directory: Directory, group: DirGroup
    ) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "schemas": [GROUP_SCHEMA],
            "id": group.id,
            "displayName": group.display_name,
            "members": [
                {"value": uid, "display": directory.users[uid].user_name}
                for uid in group.members
                if uid in directory.users
            ],
            "meta": {
                "resourceType": "Group",
                "lastModified": rfc3339(group.updated_at),
                "location": f"{self.base(request, directory)}/Groups/{group.id}",
            },
        }
        if group.external_id:
            resource["externalId"] = group.external_id
        return resource

    @staticmethod
    def _page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            start = max(int(request.query_params.get("startIndex", "1")), 1)
            count = max(int(request.query_params.get("count", "100")), 0)
        except ValueError:
            raise ScimError(400, "startIndex and count must be integers", "invalidValue") from None
        page = items[start - 1 : start - 1 + min(count, 1000)]
        return {
            "schemas": [LIST_SCHEMA],
            "totalResults": len(items),
            "startIndex": start,
            "itemsPerPage": len(page),
            "Resources": page,
        }

    @staticmethod
    def _filter(request: Request, allowed: dict[str, str]) -> tuple[str, str] | None:
        text = request.query_params.get("filter")
        if not text:
            return None
        match = _FILTER.match(text)
        if match is None or match.group(1).lower() not in allowed:
            names = ", ".join(allowed.values())
            raise ScimError(
                400, f'only `<attr> eq "value"` filters on {names} are supported', "invalidFilter"
            )
        return allowed[match.group(1).lower()], match.group(2).replace('\\"', '"')

    # -- users ------------------------------------------------------------------------------

    async def list_users(self, request: Request) -> Response:
        directory = self.directory(request)
        wanted = self._filter(
            request, {"username": "userName", "externalid": "externalId", "emails.value": "email"}
        )
        with self.state.lock:
            users = list(directory.users.values())
            if wanted is not None:
                attr, value = wanted
                if attr == "userName":
                    found = directory.by_user_name.get(value.lower())
                    users = [directory.users[found]] if found else []
                elif attr == "externalId":
                    users = [u for u in users if u.dp_id == value]
                else:
                    users = [u for u in users if u.email.lower() == value.lower()]
            items = [self.user_resource(request, directory, u) for u in users[:10_000]]
        return _scim(self._page(request, items))

    async def get_user(self, request: Request) -> Response:
        directory = self.directory(request)
        with self.state.lock:
            user = self._user(directory, request)
            return _scim(self.user_resource(request, directory, user))

    def _user(self, directory: Directory, request: Request) -> DirUser:
        try:
            return self.state.user(directory, request.path_params["user_id"])
        except NotFound:
            raise ScimError(404, f"User {request.path_params['user_id']} not found") from None

    async def create_user(self, request: Request) -> Response:
        directory = self.directory(request)
        data = await _json(request)
        fields = _user_fields(data)
        try:
            user = self.state.create_user(directory, raw=_without_password(data), **fields)
        except Conflict as exc:
            raise ScimError(409, str(exc), "uniqueness") from None
        with self.state.lock:
            body = self.user_resource(request, directory, user)
        return _scim(body, 201, body["meta"]["location"])

    async def replace_user(self, request: Request) -> Response:
        directory = self.directory(request)
        user = self._user(directory, request)
        data = await _json(request)
        fields = _user_fields(data)
        external_id = fields.pop("external_id")
        if external_id:
            fields["dp_id"] = external_id
        fields["attributes"] = fields["attributes"] or None
        try:
            self.state.update_user(directory, user, raw=_without_password(data), **fields)
        except Conflict as exc:
            raise ScimError(409, str(exc), "uniqueness") from None
        with self.state.lock:
            return _scim(self.user_resource(request, directory, user))

    async def patch_user(self, request: Request) -> Response:
        directory = self.directory(request)
        user = self._user(directory, request)
        changes: dict[str, Any] = {}
        attributes = dict(user.attributes or {})
        for op, path, value in _operations(await _json(request)):
            if op == "remove":
                _remove_user_attribute(path, attributes)
                continue
            updates = {path: value} if path else value
            if not isinstance(updates, dict):
                raise ScimError(400, "a PATCH without a path needs an object value", "invalidValue")
            for key, item in _flatten(updates).items():
                _apply_user_change(key, item, changes, attributes)
        if attributes != (user.attributes or {}):
            changes["attributes"] = attributes or None
        try:
            self.state.update_user(directory, user, **changes)
        except Conflict as exc:
            raise ScimError(409, str(exc), "uniqueness") from None
        with self.state.lock:
            return _scim(self.user_resource(request, directory, user))

    async def delete_user(self, request: Request) -> Response:
        directory = self.directory(request)
        user = self._user(directory, request)
        try:
            self.state.delete_user(directory, user)
        except KeyError:  # deleted concurrently
            raise ScimError(404, f"User {user.id} not found") from None
        return Response(status_code=204)

    # -- groups -----------------------------------------------------------------------------

    def _group(self, directory: Directory, request: Request) -> DirGroup:
        try:
            return self.state.group(directory, request.path_params["group_id"])
        except NotFound:
            raise ScimError(404, f"Group {request.path_params['group_id']} not found") from None

    def _member_ids(self, directory: Directory, value: Any) -> list[str]:
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise ScimError(400, "members must be a list of {value: id}", "invalidValue")
        ids: list[str] = []
        for item in value:
            member = item.get("value") if isinstance(item, dict) else None
            if not isinstance(member, str) or not member:
                raise ScimError(400, "each member needs a value (a user id)", "invalidValue")
            if member not in directory.users:
                raise ScimError(
                    400, f"member {member} is not a user of this directory", "invalidValue"
                )
            ids.append(member)
        return ids

    async def list_groups(self, request: Request) -> Response:
        directory = self.directory(request)
        wanted = self._filter(request, {"displayname": "displayName", "externalid": "externalId"})
        with self.state.lock:
            groups = list(directory.groups.values())
            if wanted is not None:
                attr, value = wanted
                groups = [
                    g
                    for g in groups
                    if (g.display_name if attr == "displayName" else g.external_id) == value
                ]
            items = [self.group_resource(request, directory, g) for g in groups]
        return _scim(self._page(request, items))

    async def get_group(self, request: Request) -> Response:
        directory = self.directory(request)
        with self.state.lock:
            group = self._group(directory, request)
            return _scim(self.group_resource(request, directory, group))

    async def create_group(self, request: Request) -> Response:
        from scim2_models import Group

        directory = self.directory(request)
        data = await _json(request)
        resource = _validate(Group, data)
        if not resource.display_name or not resource.display_name.strip():
            raise ScimError(400, "displayName is required", "invalidValue")
        with self.state.lock:
            members = self._member_ids(directory, data.get("members") or [])
            try:
                group = self.state.create_group(
                    directory,
                    display_name=resource.display_name.strip(),
                    external_id=resource.external_id,
                    raw=data,
                )
            except Conflict as exc:
                raise ScimError(409, str(exc), "uniqueness") from None
            if members:
                self.state.set_members(directory, group, add=members)
            body = self.group_resource(request, directory, group)
        return _scim(body, 201, body["meta"]["location"])

    async def patch_group(self, request: Request) -> Response:
        directory = self.directory(request)
        operations = _operations(await _json(request))
        with self.state.lock:
            group = self._group(directory, request)
            add: list[str] = []
            remove: list[str] = []
            rename: str | None = None
            for op, path, value in operations:
                target = (path or "").strip()
                member = _MEMBER_PATH.match(target)
                if member is not None and op == "remove":
                    remove.append(member.group(1))
                elif target.lower() == "members":
                    ids = self._member_ids(directory, value if op != "remove" or value else [])
                    if op == "add":
                        add.extend(ids)
                    elif op == "remove":
                        remove.extend(ids or list(group.members))
                    else:  # replace: the new list is the whole membership
                        remove.extend(uid for uid in group.members if uid not in ids)
                        add.extend(ids)
                elif target.lower() == "displayname" and op != "remove":
                    rename = _str(value, "displayName")
                elif not target and isinstance(value, dict):
                    for key, item in value.items():
                        if key.lower() == "displayname":
                            rename = _str(item, "displayName")
                        elif key.lower() == "members":
                            add.extend(self._member_ids(directory, item))
                        elif key.lower() not in ("id", "externalid", "schemas"):
                            raise ScimError(400, f"unsupported attribute {key}", "invalidPath")
                else:
                    raise ScimError(400, f"unsupported PATCH path {target!r}", "invalidPath")
            missing = [uid for uid in remove if uid not in directory.users]
            if missing:
                raise ScimError(
                    400, f"member {missing[0]} is not a user of this directory", "invalidValue"
                )
            if rename is not None:
                self.state.rename_group(directory, group, rename)
            remove_set = set(remove)
            self.state.set_members(
                directory,
                group,
                add=[uid for uid in add if uid not in remove_set],
                remove=remove,
            )
            body = self.group_resource(request, directory, group)
        return _scim(body)

    async def delete_group(self, request: Request) -> Response:
        directory = self.directory(request)
        with self.state.lock:
            group = self._group(directory, request)
            self.state.delete_group(directory, group)
        return Response(status_code=204)

    async def service_provider_config(self, request: Request) -> Response:
        self.directory(request)
        return _scim(
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "patch": {"supported": True},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": True, "maxResults": 1000},
                "changePassword": {"supported": False},
                "sort": {"supported": False},
                "etag": {"supported": False},
                "authenticationSchemes": [
                    {"type": "oauthbearertoken", "name": "Bearer token", "primary": True}
                ],
            }
        )


def _operations(body: dict[str, Any]) -> list[tuple[str, str, Any]]:
    operations = body.get("Operations", body.get("operations"))
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "a PATCH body needs a non-empty Operations list", "invalidSyntax")
    out: list[tuple[str, str, Any]] = []
    for item in operations:
        if not isinstance(item, dict):
            raise ScimError(400, "each operation must be an object", "invalidSyntax")
        op = str(item.get("op", "")).lower()
        if op not in ("add", "replace", "remove"):
            raise ScimError(400, f"unknown PATCH op {item.get('op')!r}", "invalidSyntax")
        path = item.get("path") or ""
        if not isinstance(path, str):
            raise ScimError(400, "path must be a string", "invalidPath")
        out.append((op, path, item.get("value")))
    return out


def _flatten(updates: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"name": {"givenName": "A"}}`` → ``{"name.givenName": "A"}`` (extension URNs kept)."""
    flat: dict[str, Any] = {}
    for key, value in updates.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key.lower() in ("name", ENTERPRISE.lower()):
            flat.update(_flatten(value, f"{name}." if key.lower() == "name" else f"{name}:"))
        else:
            flat[name] = value
    return flat


_REMOVABLE = {
    "title": "title",
    f"{ENTERPRISE.lower()}:department": "department",
    f"{ENTERPRISE.lower()}:employeenumber": "employee_id",
}
_REQUIRED = ("username", "active", "emails", "id", "externalid")


def _remove_user_attribute(path: str, attributes: dict[str, Any]) -> None:
    lowered = path.strip().lower()
    if not lowered or lowered.split("[")[0].split(".")[0] in _REQUIRED:
        raise ScimError(400, f"{path or 'the user'} cannot be removed", "mutability")
    if lowered in _REMOVABLE:
        attributes.pop(_REMOVABLE[lowered], None)
    # Removing an attribute the directory does not model (manager, phoneNumbers…) is a no-op.


def _without_password(data: dict[str, Any]) -> dict[str, Any]:
    # IdPs may send a password on create; it must never travel on in raw_attributes.
    return {key: value for key, value in data.items() if key.lower() != "password"}


def _apply_user_change(
    key: str, value: Any, changes: dict[str, Any], attributes: dict[str, Any]
) -> None:
    lowered = key.lower()
    if lowered == "active":
        changes["active"] = _bool(value, "active")
    elif lowered == "username":
        changes["user_name"] = _str(value, "userName").strip()
    elif lowered == "name.givenname":
        changes["given_name"] = _str(value, "name.givenName")
    elif lowered == "name.familyname":
        changes["family_name"] = _str(value, "name.familyName")
    elif lowered == "displayname":
        changes["display_name"] = _str(value, "displayName")
    elif lowered == "externalid":
        changes["dp_id"] = _str(value, "externalId")
    elif lowered == "title":
        attributes["title"] = _str(value, "title")
    elif lowered.startswith("emails"):
        if isinstance(value, list):
            emails = [e for e in value if isinstance(e, dict) and isinstance(e.get("value"), str)]
            primary = next((e for e in emails if e.get("primary")), emails[0] if emails else None)
            if primary is None:
                raise ScimError(400, "emails must hold at least one {value}", "invalidValue")
            changes["email"] = primary["value"]
        else:
            changes["email"] = _str(value, key)
    elif lowered.startswith(ENTERPRISE.lower()):
        leaf = lowered[len(ENTERPRISE) + 1 :]
        if leaf == "department":
            attributes["department"] = _str(value, "department")
        elif leaf == "employeenumber":
            attributes["employee_id"] = _str(value, "employeeNumber")
        elif leaf == "costcenter":
            attributes["custom_attributes"] = {"cost_center": _str(value, "costCenter")}
    elif lowered in ("id", "schemas", "meta"):
        raise ScimError(400, f"{key} cannot be changed", "mutability")
    # Other attributes (phoneNumbers, locale, …) are accepted and not modelled.


Endpoint = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ScimError as exc:
            return exc.response()

    return endpoint


def scim_routes(state: EmulatorState) -> list[BaseRoute]:
    api = ScimApi(state)
    base = "/directory/{directory_id}/scim/v2"
    table: list[tuple[str, Endpoint, list[str]]] = [
        ("/Users", api.list_users, ["GET"]),
        ("/Users", api.create_user, ["POST"]),
        ("/Users/{user_id}", api.get_user, ["GET"]),
        ("/Users/{user_id}", api.replace_user, ["PUT"]),
        ("/Users/{user_id}", api.patch_user, ["PATCH"]),
        ("/Users/{user_id}", api.delete_user, ["DELETE"]),
        ("/Groups", api.list_groups, ["GET"]),
        ("/Groups", api.create_group, ["POST"]),
        ("/Groups/{group_id}", api.get_group, ["GET"]),
        ("/Groups/{group_id}", api.patch_group, ["PATCH"]),
        ("/Groups/{group_id}", api.delete_group, ["DELETE"]),
        ("/ServiceProviderConfig", api.service_provider_config, ["GET"]),
    ]
    # Starlette matches the first route whose path fits, methods or not; group by path.
    by_path: dict[str, dict[str, Endpoint]] = {}
    for path, handler, methods in table:
        for method in methods:
            by_path.setdefault(path, {})[method] = _guarded(handler)

    def dispatch(handlers: dict[str, Endpoint]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return await handlers[request.method](request)

        return endpoint

    return [
        Route(base + path, dispatch(handlers), methods=list(handlers))
        for path, handlers in by_path.items()
    ]
