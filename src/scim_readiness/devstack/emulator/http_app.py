"""The HTTP/1.1 side of the emulator: OAuth token, keys, admin-portal pages, SCIM 2.0.

A Starlette app served by uvicorn on an internal loopback port; the TLS front hands it every
connection that did not negotiate ``h2``.
"""

from __future__ import annotations

import base64
import binascii
import html
import secrets
import time
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from scim_readiness.devstack.emulator.grpc_services import Services
    from scim_readiness.devstack.emulator.state import EmulatorState


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"cache-control": "no-store"},
    )


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    client_id = form.get("client_id", "")
    client_secret = form.get("client_secret", "")
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        client_id, _, client_secret = decoded.partition(":")
    return client_id, client_secret


def build_app(state: EmulatorState, services: Services | None = None) -> Starlette:
    """``services``: the gRPC servicers' plumbing, shared with the REST API (its own when
    None)."""
    import threading

    from scim_readiness.devstack.emulator.grpc_services import Services
    from scim_readiness.devstack.emulator.rest import rest_routes
    from scim_readiness.devstack.emulator.scim import scim_routes

    services = services or Services(state, threading.Event())

    async def token(request: Request) -> Response:
        try:
            form = {key: str(value) for key, value in (await request.form()).items()}
        except Exception:  # noqa: BLE001 - any unparsable body is the client's error
            return _oauth_error(400, "invalid_request", "the body must be form-encoded")
        grant = form.get("grant_type", "")
        if grant != "client_credentials":
            return _oauth_error(
                400, "unsupported_grant_type", f"grant_type {grant!r} is not supported"
            )
        client_id, client_secret = _client_credentials(request, form)
        if not client_id or not client_secret:
            return _oauth_error(401, "invalid_client", "client_id and client_secret are required")
        if client_id != state.client_id:
            return _oauth_error(401, "invalid_client", "unknown client_id")
        if not secrets.compare_digest(client_secret.encode(), state.client_secret.encode()):
            return _oauth_error(401, "invalid_client", "client authentication failed")
        access_token, lifetime = state.issue_token()
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": int(lifetime),
                "scope": "openid",
            },
            headers={"cache-control": "no-store"},
        )

    async def keys(request: Request) -> Response:
        # The environment's JWKS: the SDKs verify access tokens against it.
        return JSONResponse({"keys": [state.signing_key.jwk()]})

    async def portal(request: Request) -> Response:
        link = state.portal_links.get(request.path_params["token"])
        frame = "frame-ancestors " + (" ".join(state.seed.portal.frame_ancestors) or "'none'")
        headers = {
            "content-security-policy": frame,
            "cache-control": "no-store",
            "referrer-policy": "no-referrer",
        }
        if link is None:
            return HTMLResponse("<h1>Link not found</h1>", status_code=404, headers=headers)
        if link.expires_at <= time.time():
            return HTMLResponse("<h1>This link has expired</h1>", status_code=410, headers=headers)
        if request.method == "GET":
            if link.used:
                return HTMLResponse(
                    "<h1>This link was already used</h1>", status_code=410, headers=headers
                )
            link.used = True
        org = state.organizations.get(link.organization_id)
        name = html.escape(org.display_name if org else link.organization_id)
        features = ", ".join(link.features) or "none"
        body = (
            "<!doctype html><html><head><title>Admin portal</title></head><body>"
            f"<h1>{name}: admin portal</h1><p>Features: {html.escape(features)}</p>"
            "</body></html>"
        )
        return HTMLResponse(body, headers=headers)

    routes = [
        Route("/oauth/token", token, methods=["POST"]),
        Route("/keys", keys, methods=["GET"]),
        Route("/portal/{token}", portal, methods=["GET", "HEAD"]),
        *scim_routes(state),
        *rest_routes(services),
    ]
    return Starlette(routes=routes)
