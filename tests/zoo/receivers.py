"""The zoo: receivers written elsewhere, each with its author's own probe shape."""

from __future__ import annotations

import sys

from zoo.harness import Receiver

QUEUE_APP = Receiver(
    name="queue-app",
    argv=(sys.executable, "queue_app/main.py"),
    webhook_path="/hooks/scalekit",
    health_path="/healthz",
    # List only: every user in one bare JSON list, no lookup by email or id.
    probe={
        "list_users": "{base}/api/users",
        "items_path": "",
        "fields": {
            "id": "uid",
            "directory_user_id": "externalId",
            "email": "mail",
            "name": "displayName",
            "active": "status",
            "roles": "roles",
            "tenant": "org",
        },
    },
)

FLASK_APP = Receiver(
    name="flask-app",
    argv=(sys.executable, "flask_app/app.py"),
    webhook_path="/webhooks/directory",
    health_path="/up",
    # Keyed by email; a single account comes wrapped as {"user": {...}}; the list pages by
    # page number.
    probe={
        "user_by_email": "{base}/admin/api/users/{email}",
        "user_path": "user",
        "list_users": "{base}/admin/api/users?page={page}&per_page=50",
        "next_page_path": "next_page",
        "fields": {
            "id": "id",
            "directory_user_id": "scim_id",
            "email": "email",
            "name": "full_name",
            "active": "is_active",
            "roles": "roles",
            "tenant": "tenant",
        },
    },
)

NODE_APP = Receiver(
    name="node-app",
    argv=("node", "node/server.js"),
    webhook_path="/api/webhooks/scalekit",
    health_path="/health",
    # Lookups by email and by directory id; the list pages by cursor under other names; the
    # name sits one level down (profile.displayName).
    probe={
        "user_by_email": "{base}/internal/scim/users/by-email/{email}",
        "user_by_id": "{base}/internal/scim/users/{directory_user_id}",
        "list_users": "{base}/internal/scim/users?limit=100&starting_after={cursor}",
        "items_path": "data",
        "next_cursor_path": "next",
        "fields": {
            "id": "userId",
            "directory_user_id": "directoryUserId",
            "email": "primaryEmail",
            "name": "profile.displayName",
            "active": "active",
            "roles": "roles",
            "tenant": "workspaceId",
        },
    },
)
