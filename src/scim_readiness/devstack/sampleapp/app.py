"""The reference app's HTTP surface (Starlette): webhook, health, probe, admin-portal link."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from scim_readiness.devstack.sampleapp.portal import PortalLinks, PortalUnavailable
from scim_readiness.devstack.sampleapp.settings import AppSettings
from scim_readiness.devstack.sampleapp.store import Store
from scim_readiness.devstack.sampleapp.webhook import Reply, WebhookHandler, constant_time_bearer

MAX_PAGE = 1000
DEFAULT_PAGE = 100


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# How long the webhook-hangs flaw holds a request: longer than any client waits.
HANG_S = 3600.0


async def _hang_until_disconnected(request: Request) -> None:
    deadline = asyncio.get_running_loop().time() + HANG_S
    while asyncio.get_running_loop().time() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.2)


def _respond(reply: Reply) -> Response:
    if isinstance(reply.body, str):
        return PlainTextResponse(reply.body, status_code=reply.status)
    return JSONResponse(reply.body, status_code=reply.status)


def _error(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


#: How long the ``dedupe-before-apply`` flaw looks for a client that went away (as a
#: framework that cancels a request's work on disconnect would notice it mid-way).
DISCONNECT_WATCH_S = 0.4


def _client_gone(request: Request) -> Callable[[], bool]:
    """For the worker thread: whether the client closed its connection (watched briefly)."""

    def gone() -> bool:
        deadline = time.monotonic() + DISCONNECT_WATCH_S
        while time.monotonic() < deadline:
            if anyio.from_thread.run(request.is_disconnected):
                return True
            time.sleep(0.01)
        return False

    return gone


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccessRoutes:
    """What a signed-in user holds: a session (cookie) and an API token (bearer). The test
    hook issues both for a provisioned user; ``/api/me`` answers 200 while they are valid
    and the user still has access, else 401. Deprovisioning revokes both."""

    def __init__(
        self,
        settings: AppSettings,
        store: Store,
        probe_auth: Callable[[Request], Response | None],
    ) -> None:
        self.settings, self.store, self.probe_auth = settings, store, probe_auth

    async def issue(self, request: Request) -> Response:
        if (refusal := self.probe_auth(request)) is not None:
            return refusal
        directory_user_id = request.query_params.get("directory_user_id", "").strip()
        if not directory_user_id:
            return _error(400, "invalid_request", "query parameter directory_user_id is required")
        return await run_in_threadpool(self._issue, directory_user_id)

    def _issue(self, directory_user_id: str) -> Response:
        session, token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        with self.store.transaction() as tx:
            user = tx.user_by_directory_id(directory_user_id)
            if user is None:
                return _error(404, "not_found", "no user with that directory user id")
            if not user.active:
                return _error(409, "inactive", "the user has no access; nothing was issued")
            tx.add_credential(_hash(session), "session", directory_user_id)
            tx.add_credential(_hash(token), "api_token", directory_user_id)
        return JSONResponse(
            {"session": session, "api_token": token}, headers={"cache-control": "no-store"}
        )

    async def me(self, request: Request) -> Response:
        session = request.cookies.get("session")
        bearer = request.headers.get("authorization", "")
        scheme, _, token = bearer.partition(" ")
        if session:
            credential, kind = session, "session"
        elif scheme.lower() == "bearer" and token.strip():
            credential, kind = token.strip(), "api_token"
        else:
            return _error(401, "unauthorized", "sign in or send an API token")
        owner = await run_in_threadpool(self._owner_with_access, credential, kind)
        if owner is None:
            return _error(401, "unauthorized", f"the {kind} is not valid")
        return JSONResponse({"directory_user_id": owner, "via": kind})

    def _owner_with_access(self, credential: str, kind: str) -> str | None:
        with self.store.transaction() as tx:
            owner = tx.credential_owner(_hash(credential), kind)
            if owner is None or self.settings.has("sessions-survive-deprovisioning"):
                return owner
            user = tx.user_by_directory_id(owner)
        # Revocation on deprovisioning ends these; the state check backs it up.
        return owner if user is not None and user.active and not user.deleted else None


def create_app(settings: AppSettings, store: Store, portal: PortalLinks | None = None) -> Starlette:
    handler = WebhookHandler(settings, store)
    portal = portal or PortalLinks(settings)

    async def webhook(request: Request) -> Response:
        if settings.has("webhook-hangs"):
            # Holds the request, unanswered, until the client gives up.
            await _hang_until_disconnected(request)
            return _error(503, "unavailable", "gave up waiting")
        body = await _read_limited(request, settings.max_body_bytes)
        if body is None:
            reply = Reply(
                413,
                {
                    "error": "body_too_large",
                    "detail": f"webhook bodies are limited to {settings.max_body_bytes} bytes",
                },
            )
        else:
            headers = {name.lower(): value for name, value in request.headers.items()}
            gone = _client_gone(request) if settings.has("dedupe-before-apply") else None
            reply = await run_in_threadpool(handler.handle, headers, body, gone)
        if settings.has("slow-ack"):
            await asyncio.sleep(settings.slow_ack_s)
        return _respond(reply)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def probe_auth(request: Request) -> Response | None:
        if settings.has("probe-404"):
            return _error(404, "not_found", "no such route")
        if constant_time_bearer(request.headers.get("authorization"), settings.probe_token):
            return None
        return _error(401, "unauthorized", "send Authorization: Bearer <probe token>")

    async def by_email(request: Request) -> Response:
        if (refusal := probe_auth(request)) is not None:
            return refusal
        email = request.query_params.get("email", "").strip()
        if not email:
            return _error(400, "invalid_request", "query parameter email is required")
        users = await run_in_threadpool(store.users_by_email, email)
        if not users:
            return _error(404, "not_found", "no user with that email")
        return JSONResponse(users[0].to_json())

    async def by_id(request: Request) -> Response:
        if (refusal := probe_auth(request)) is not None:
            return refusal
        users = await run_in_threadpool(
            store.users_by_directory_id, request.path_params["directory_user_id"]
        )
        if not users:
            return _error(404, "not_found", "no user with that directory user id")
        return JSONResponse(users[0].to_json())

    async def list_users(request: Request) -> Response:
        if (refusal := probe_auth(request)) is not None:
            return refusal
        params = request.query_params
        cursor = params.get("cursor", "")
        limit_text = params.get("limit", "") or str(DEFAULT_PAGE)
        if cursor and not cursor.isdigit():
            return _error(400, "invalid_request", "cursor must be a next_cursor value")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE:
            return _error(400, "invalid_request", f"limit must be between 1 and {MAX_PAGE}")
        limit = int(limit_text)
        email = params.get("email")
        directory_user_id = params.get("directory_user_id")
        users: list[Any]
        if email is not None or directory_user_id is not None:
            # Every matching row, duplicates included: how a checker counts records.
            if email is not None:
                users = await run_in_threadpool(store.users_by_email, email)
            else:
                users = await run_in_threadpool(
                    store.users_by_directory_id, directory_user_id or ""
                )
            return JSONResponse({"users": [u.to_json() for u in users], "next_cursor": None})
        users = await run_in_threadpool(
            lambda: store.list_users(
                after=int(cursor or 0), limit=limit, tenant=params.get("tenant")
            )
        )
        next_cursor = str(users[-1].pk) if len(users) == limit else None
        return JSONResponse({"users": [u.to_json() for u in users], "next_cursor": next_cursor})

    async def portal_link(request: Request) -> Response:
        authorized = constant_time_bearer(
            request.headers.get("authorization"), settings.portal_token
        )
        if not authorized and not settings.has("portal-link-unauthenticated"):
            return _error(401, "unauthorized", "sign in to open the admin portal")
        organization_id = request.query_params.get("organization_id") or next(
            iter(settings.tenant_by_org), ""
        )
        if not organization_id:
            return _error(400, "invalid_request", "query parameter organization_id is required")
        if settings.tenant_by_org and organization_id not in settings.tenant_by_org:
            return _error(404, "not_found", "that organization is not linked to this app")
        try:
            link = await run_in_threadpool(portal.generate, organization_id)
        except PortalUnavailable as exc:
            return _error(503, "portal_unavailable", str(exc))
        return JSONResponse(link, headers={"cache-control": "no-store"})

    access = AccessRoutes(settings, store, probe_auth)
    app = Starlette(
        routes=[
            Route("/test-hooks/credentials", access.issue, methods=["POST"]),
            Route("/api/me", access.me, methods=["GET"]),
            Route("/webhooks/scalekit", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/probe/users/by-email", by_email, methods=["GET"]),
            Route("/probe/users/{directory_user_id}", by_id, methods=["GET"]),
            Route("/probe/users", list_users, methods=["GET"]),
            Route("/api/admin-portal-link", portal_link, methods=["GET"]),
        ]
    )
    app.state.store = store
    app.state.portal = portal
    return app
