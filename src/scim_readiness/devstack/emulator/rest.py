"""Scalekit's REST API (``/api/v1/...``), for apps that call REST instead of gRPC.

Scalekit publishes its REST API as the HTTP transcoding of its gRPC services: each RPC's
``google.api.http`` option in the SDK's own protos names the method, the path and which
part of the request the body fills. The routes here are read from those options, and each
request is answered by the same servicer method the gRPC server uses, so the REST API
covers exactly what the gRPC services do here, with the same validation (page size at
most 30), the same token check and the same errors. Bodies are the protos' JSON with their
field names (``display_name``, ``next_page_token``), as the published OpenAPI shows them;
errors are ``{"code", "message", "details"}`` with the HTTP status of the gRPC code.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.api import annotations_pb2  # type: ignore[import-untyped]
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from scim_readiness.devstack.emulator.grpc_services import Services

MAX_BODY = 1024 * 1024
_log = logging.getLogger(__name__)

#: The HTTP status grpc-gateway gives each gRPC status code.
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


class _Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class _Context:
    """The part of ``grpc.ServicerContext`` the servicers use, fed from an HTTP request."""

    def __init__(self, authorization: str | None) -> None:
        self._metadata = (("authorization", authorization),) if authorization else ()

    def invocation_metadata(self) -> Sequence[tuple[str, str]]:
        return self._metadata

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise _Aborted(code, details)

    def set_code(self, code: grpc.StatusCode) -> None:  # the generated base classes call these
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details


def error_response(code: grpc.StatusCode, message: str) -> Response:
    return JSONResponse(
        {"code": code.value[0], "message": message, "details": []},
        status_code=HTTP_STATUS.get(code, 500),
    )


@dataclass(frozen=True)
class Binding:
    """One RPC's HTTP binding: ``GET /api/v1/organizations/{id}`` and so on."""

    verb: str
    template: str
    pattern: re.Pattern[str]
    body: str  # "", "*" or the request field the body fills
    method: MethodDescriptor
    servicer: Any

    @property
    def implemented(self) -> bool:
        # The generated base class answers UNIMPLEMENTED; ours define what they serve.
        return self.method.name in vars(type(self.servicer))


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-z_]+\})", template)
    regex = "".join(
        f"(?P<{part[1:-1]}>[^/:]+)" if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(f"^{regex}$")


def bindings(services: Services) -> list[Binding]:
    """Every HTTP binding of the services the emulator serves, from the protos' options."""
    from scalekit.v1.directories import directories_pb2 as dpb
    from scalekit.v1.organizations import organizations_pb2 as opb
    from scalekit.v1.roles import roles_pb2 as rpb

    from scim_readiness.devstack.emulator.grpc_services import (
        DirectoryService,
        OrganizationService,
        RolesService,
    )

    out: list[Binding] = []
    for module, name, servicer in (
        (opb, "OrganizationService", OrganizationService(services)),
        (dpb, "DirectoryService", DirectoryService(services)),
        (rpb, "RolesService", RolesService(services)),
    ):
        for method in module.DESCRIPTOR.services_by_name[name].methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            rule = options.Extensions[annotations_pb2.http]
            for each in (rule, *rule.additional_bindings):
                verb = each.WhichOneof("pattern")
                if verb in (None, "custom"):
                    continue
                template = getattr(each, verb)
                out.append(
                    Binding(
                        verb.upper(),
                        template,
                        _pattern(template),
                        each.body or rule.body,
                        method,
                        servicer,
                    )
                )
    return out


def _query_value(field: FieldDescriptor, values: list[str]) -> Any:
    def one(text: str) -> Any:
        if field.type == FieldDescriptor.TYPE_BOOL:
            return text.lower() in ("true", "1")
        if field.cpp_type in (
            FieldDescriptor.CPPTYPE_INT32,
            FieldDescriptor.CPPTYPE_INT64,
            FieldDescriptor.CPPTYPE_UINT32,
            FieldDescriptor.CPPTYPE_UINT64,
        ):
            return int(text)
        return text

    repeated = getattr(field, "is_repeated", None)
    if repeated is None:  # protobuf before 5.30
        repeated = field.label == FieldDescriptor.LABEL_REPEATED
    return [one(v) for v in values] if repeated else one(values[-1])


def build_request(
    binding: Binding,
    path_values: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    body: Any,
) -> Any:
    """The RPC's request message from the path, the query string and the JSON body.

    Raises ``_Aborted(INVALID_ARGUMENT)`` for what cannot be parsed, as the gateway does."""
    descriptor: Descriptor = binding.method.input_type
    request = message_factory.GetMessageClass(descriptor)()
    fields: dict[str, Any] = dict(path_values)
    by_name: dict[str, list[str]] = {}
    for key, value in query:
        by_name.setdefault(key, []).append(value)
    try:
        for key, values in by_name.items():
            field = descriptor.fields_by_name.get(key)
            if field is None or key in fields:
                continue
            fields[key] = _query_value(field, values)
        if binding.body == "*" and body is not None:
            fields.update(body if isinstance(body, dict) else {})
        elif binding.body and body is not None:
            fields[binding.body] = body
        json_format.ParseDict(fields, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise _Aborted(grpc.StatusCode.INVALID_ARGUMENT, f"invalid request: {exc}") from None
    return request


def rest_routes(services: Services) -> list[BaseRoute]:
    table = bindings(services)

    async def endpoint(request: Request) -> Response:
        path = request.url.path
        matches = [b for b in table if b.pattern.match(path)]
        chosen = next((b for b in matches if b.verb == request.method), None)
        if chosen is None:
            if matches:
                return error_response(grpc.StatusCode.UNIMPLEMENTED, "Method Not Allowed")
            return error_response(grpc.StatusCode.NOT_FOUND, "Not Found")
        if not chosen.implemented:
            name = chosen.method.full_name
            return error_response(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not emulated")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return error_response(grpc.StatusCode.RESOURCE_EXHAUSTED, "the body is too large")
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            return error_response(grpc.StatusCode.INVALID_ARGUMENT, "the body is not JSON")
        match = chosen.pattern.match(path)
        assert match is not None  # noqa: S101 - matched above
        context = _Context(request.headers.get("authorization"))
        try:
            message = build_request(
                chosen, match.groupdict(), request.query_params.multi_items(), body
            )
            call = getattr(chosen.servicer, chosen.method.name)
            # In a worker thread: the servicers take the state lock and may be told to stall.
            answer = await run_in_threadpool(call, message, context)
        except _Aborted as exc:
            return error_response(exc.code, exc.details)
        except Exception:  # a bug here: a gateway-shaped 500, and the traceback in the log
            _log.exception("REST %s %s failed", request.method, path)
            return error_response(grpc.StatusCode.INTERNAL, "internal error")
        return JSONResponse(json_format.MessageToDict(answer, preserving_proto_field_name=True))

    return [
        Route("/api/v1/{rest:path}", endpoint, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    ]
