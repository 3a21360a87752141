"""Provisioning receiver for the HR-tools team.

Scalekit wants an answer within seconds, so the HTTP handler only verifies and validates,
acknowledges with 202 and leaves the real work to a background worker that drains a queue.
Users live in memory (this service is rebuilt from the directory on deploy).

Scalekit retries, so deliveries come late, twice or out of order. The worker therefore never
applies an event to a user directly: it files the event in that user's log, ordered by when
it happened (`occurred_at`, then arrival), and the user is whatever replaying the log gives.
A late, older update lands in the middle of the log and changes nothing after it; a deletion
ends the log for good (Scalekit gives a returning employee a new directory id), so a late
update after it, or a create delivered after its own delete, never brings anyone back.
Someone who left frees their email for whoever gets it next.

Ops endpoint: GET /api/users lists everyone (no paging: we are a few thousand people).

Env: ZOO_PORT, ZOO_CERT, ZOO_KEY, ZOO_WEBHOOK_SECRET, ZOO_PROBE_TOKEN,
ZOO_ORGANIZATION_ID, ZOO_TENANT, ZOO_DEFECTS (comma-separated, for the test suite).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("hr-provisioning")

MAX_BODY = 256 * 1024
# How many upserts a user's log keeps: each carries the whole user, so older ones only
# matter for ordering, and one that old sorts before all of them anyway.
LOG_DEPTH = 20
DEFECTS = set(filter(None, os.environ.get("ZOO_DEFECTS", "").split(",")))

users: dict[str, dict[str, Any]] = {}  # keyed by the directory user id
seen_deliveries: set[str] = set()
jobs: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
arrivals = itertools.count()


@dataclass(order=True)
class Entry:
    at: datetime
    arrival: int
    kind: str = field(compare=False)  # created, updated or deleted
    event: dict[str, Any] = field(compare=False)


logs: dict[str, list[Entry]] = {}  # directory user id -> its events, oldest first


class BadEvent(Exception):
    pass


def check_user_payload(data: Any) -> None:
    if not isinstance(data, dict):
        raise BadEvent("data must be an object")
    if not isinstance(data.get("id"), str) or not data["id"]:
        raise BadEvent("data.id is required")
    email = data.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise BadEvent("data.email is required")
    if "active" in data and not isinstance(data["active"], bool):
        raise BadEvent("data.active must be true or false")
    if "roles" in data and not isinstance(data["roles"], list):
        raise BadEvent("data.roles must be a list")


def owner_of(email: str) -> dict[str, Any] | None:
    """The current holder of an address (people who left hold none)."""
    wanted = email.casefold()
    return next(
        (
            u
            for u in users.values()
            if u["mail"].casefold() == wanted and u["status"] != "deprovisioned"
        ),
        None,
    )


def role_names(data: dict[str, Any]) -> list[str]:
    return [
        r["role_name"] for r in data.get("roles", []) if isinstance(r, dict) and "role_name" in r
    ]


def occurred(event: dict[str, Any]) -> datetime:
    try:
        moment = datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return datetime.now(UTC)  # no time given: it happened when it arrived
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def build_record(uid: str, event: dict[str, Any], previous: dict[str, Any] | None) -> dict:
    data = event["data"]
    org = event.get("organization_id")
    record = {
        "uid": previous["uid"] if previous else "u-" + uuid.uuid4().hex[:12],
        "externalId": uid,
        "mail": data["email"],
        "displayName": data.get("name")
        or f"{data.get('given_name', '')} {data.get('family_name', '')}".strip(),
        "status": "active" if data.get("active", True) else "suspended",
        "roles": role_names(data),
        "org": os.environ["ZOO_TENANT"] if org == os.environ.get("ZOO_ORGANIZATION_ID") else org,
    }
    if "drops-role-removals" in DEFECTS and previous is not None:
        record["roles"] = sorted(set(previous["roles"]) | set(record["roles"]))
    return record


def replay(uid: str, history: list[Entry]) -> dict[str, Any] | None:
    """The user as their log says, or None when it holds nothing to show."""
    record = users.get(uid)
    state: dict[str, Any] | None = None
    for entry in history:
        if entry.kind == "deleted":
            return None if state is None else state | {"status": "deprovisioned"}
        state = build_record(uid, entry.event, state or record)
    return state


def file_event(kind: str, event: dict[str, Any]) -> None:
    data = event["data"]
    uid = data["id"]
    if kind != "deleted":
        holder = owner_of(data["email"])
        if holder is not None and holder["externalId"] != uid:
            log.warning(
                "email %s already belongs to %s; dropped", data["email"], holder["externalId"]
            )
            return
    history = logs.setdefault(uid, [])
    bisect.insort(history, Entry(occurred(event), next(arrivals), kind, event))
    upserts = [entry for entry in history if entry.kind != "deleted"]
    if len(upserts) > LOG_DEPTH:
        history.remove(upserts[0])
    if "no-dedupe" in DEFECTS and kind == "created" and uid in users:
        users[uid + "#" + uuid.uuid4().hex[:6]] = build_record(uid, event, None)
        return
    state = replay(uid, history)
    if state is None:
        users.pop(uid, None)
    else:
        users[uid] = state


async def worker() -> None:
    while True:
        event = await jobs.get()
        try:
            subject, _, kind = event["type"].rpartition("_")
            if subject.endswith(".user") and kind in ("created", "updated", "deleted"):
                file_event(kind, event)
            # groups: roles arrive on the user events
        except Exception:
            log.exception("job failed")
        finally:
            jobs.task_done()


async def scalekit_webhook(request: Request) -> Response:
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse({"error": "payload too large"}, status_code=413)
    headers = {k.lower(): v for k, v in request.headers.items()}
    unsigned = "webhook-signature" not in headers and "svix-signature" not in headers
    if not (unsigned and "accept-unsigned-in-dev" in DEFECTS):
        if "webhook-id" not in headers:  # older senders use the svix-* names
            for part in ("id", "timestamp", "signature"):
                if f"svix-{part}" in headers:
                    headers[f"webhook-{part}"] = headers[f"svix-{part}"]
        try:
            Webhook(os.environ["ZOO_WEBHOOK_SECRET"]).verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError, KeyError):
            return JSONResponse({"error": "bad signature"}, status_code=401)
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        return JSONResponse({"error": "body is not JSON"}, status_code=400)
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return JSONResponse({"error": "not an event"}, status_code=400)
    delivery = headers.get("webhook-id") or str(event.get("id"))
    if delivery in seen_deliveries:
        return JSONResponse({"status": "duplicate"}, status_code=200)
    event_type = event["type"]
    if event_type.startswith("organization.directory.user_"):
        try:
            if event_type.endswith("_deleted"):
                if not isinstance(event.get("data"), dict) or not event["data"].get("id"):
                    raise BadEvent("data.id is required")
            else:
                check_user_payload(event.get("data"))
        except BadEvent as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if event_type.endswith("_created") or event_type.endswith("_updated"):
            holder = owner_of(event["data"]["email"])
            if holder is not None and holder["externalId"] != event["data"]["id"]:
                return JSONResponse({"error": "email belongs to another user"}, status_code=409)
    elif not event_type.startswith("organization.directory."):
        return JSONResponse({"status": "ignored"}, status_code=200)
    seen_deliveries.add(delivery)
    await jobs.put(event)
    return JSONResponse({"status": "queued"}, status_code=202)


async def list_users(request: Request) -> Response:
    if request.headers.get("authorization") != f"Bearer {os.environ['ZOO_PROBE_TOKEN']}":
        return JSONResponse({"error": "unauthorised"}, status_code=401)
    return JSONResponse(list(users.values()))


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True, "queued": jobs.qsize()})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(worker())
    yield
    task.cancel()


app = Starlette(
    routes=[
        Route("/hooks/scalekit", scalekit_webhook, methods=["POST"]),
        Route("/api/users", list_users),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["ZOO_PORT"]),
        ssl_certfile=os.environ["ZOO_CERT"],
        ssl_keyfile=os.environ["ZOO_KEY"],
        log_level="warning",
    )
