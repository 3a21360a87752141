"""Directory sync for the billing portal (Flask + SQLite).

Accounts are keyed by email (that is how people sign in here); the directory's user id is
kept beside it so renames and deprovisioning find the right account. A deleted directory
user is deactivated, never erased: invoices keep pointing at the account.

Scalekit retries failed deliveries, so events arrive late and out of order. Every directory
user id has a row in `directory_sync` with the time (`occurred_at`) of the newest event we
applied for it and whether that event was a deletion; anything older is acknowledged and
dropped. A deletion for someone we never saw still gets its row, so their late
`user_created` cannot provision them. A strictly newer event for a deleted id is applied: an
IdP that restores a user from its recycle bin sends it under the same id. When a *new*
directory id arrives with the email of a departed account, that is a re-hire: the account
(and its invoices) is handed to the new id and reactivated.

Admin API (bearer token): GET /admin/api/users?page=N&per_page=M, GET /admin/api/users/<email>.

Env: ZOO_PORT, ZOO_CERT, ZOO_KEY, ZOO_WEBHOOK_SECRET, ZOO_PROBE_TOKEN, ZOO_ORGANIZATION_ID,
ZOO_TENANT, ZOO_DB, ZOO_DEFECTS (comma-separated, for the test suite).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from datetime import datetime

from flask import Flask, abort, g, jsonify, request

app = Flask(__name__)
# Read whole bodies up to 2 MiB (a refusal before reading resets the sender's connection);
# past 512 KiB it is refused below.
app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024
MAX_EVENT_BYTES = 512 * 1024

DEFECTS = set(filter(None, os.environ.get("ZOO_DEFECTS", "").split(",")))
TOLERANCE_S = 300
_write_lock = threading.Lock()

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE {collate},
    scim_id TEXT UNIQUE,
    full_name TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    roles TEXT NOT NULL DEFAULT '[]',
    tenant TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (webhook_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS directory_sync (
    scim_id TEXT PRIMARY KEY,
    last_event_at REAL NOT NULL,
    departed INTEGER NOT NULL DEFAULT 0
);
"""


def db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = sqlite3.connect(os.environ["ZOO_DB"], isolation_level=None)
        g.db.row_factory = sqlite3.Row
    return g.db


@app.teardown_appcontext
def close_db(_exc: BaseException | None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_db() -> None:
    collate = "" if "case-sensitive-email-key" in DEFECTS else "COLLATE NOCASE"
    conn = sqlite3.connect(os.environ["ZOO_DB"])
    conn.executescript(SCHEMA.format(collate=collate))
    conn.close()


# --- signature ------------------------------------------------------------------------


def _header(name: str) -> str | None:
    return request.headers.get(f"webhook-{name}") or request.headers.get(f"svix-{name}")


def signature_ok(raw: bytes) -> bool:
    msg_id, stamp, signatures = _header("id"), _header("timestamp"), _header("signature")
    secret = os.environ["ZOO_WEBHOOK_SECRET"]
    if not (msg_id and stamp and signatures and stamp.isdigit()):
        return False
    if abs(time.time() - int(stamp)) > TOLERANCE_S:
        return False
    if "hmac-over-parsed-json" in DEFECTS:
        # "Normalise" the body first so whitespace never matters.
        try:
            raw = json.dumps(json.loads(raw), separators=(",", ":")).encode()
        except ValueError:
            return False
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + raw
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for item in signatures.split():
        version, _, value = item.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


# --- webhook ---------------------------------------------------------------------------


def bad_request(message: str, status: int = 400):  # noqa: ANN201 - a Flask response
    return jsonify(error=message), status


def account_json(row: sqlite3.Row) -> dict[str, object]:
    return {
        "id": row["id"],
        "email": row["email"],
        "scim_id": row["scim_id"],
        "full_name": row["full_name"],
        "is_active": bool(row["is_active"]),
        "roles": json.loads(row["roles"]),
        "tenant": row["tenant"],
    }


def event_time(event: dict) -> float:
    """When the change happened in the directory (epoch seconds); the arrival time for an
    event that does not say."""
    stamp = event.get("occurred_at")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()


def is_stale(conn: sqlite3.Connection, scim_id: str, at: float, *, deletion: bool) -> bool:
    """True when we already applied something newer for this directory user. A deletion wins
    a tie: with two events of the same instant, the safe outcome is no access."""
    row = conn.execute(
        "SELECT last_event_at, departed FROM directory_sync WHERE scim_id = ?", (scim_id,)
    ).fetchone()
    if row is None:
        return False
    if at < row["last_event_at"]:
        return True
    return at == row["last_event_at"] and bool(row["departed"]) and not deletion


def mark_synced(conn: sqlite3.Connection, scim_id: str, at: float, *, departed: bool) -> None:
    conn.execute(
        "INSERT INTO directory_sync (scim_id, last_event_at, departed) VALUES (?, ?, ?) "
        "ON CONFLICT (scim_id) DO UPDATE SET last_event_at = excluded.last_event_at, "
        "departed = excluded.departed",
        (scim_id, at, int(departed)),
    )


def has_departed(conn: sqlite3.Connection, scim_id: str | None) -> bool:
    row = conn.execute(
        "SELECT departed FROM directory_sync WHERE scim_id = ?", (scim_id,)
    ).fetchone()
    return row is not None and bool(row["departed"])


def upsert_account(conn: sqlite3.Connection, data: dict, organization_id: str):  # noqa: ANN201
    email = data["email"].strip()
    name = data.get("name") or f"{data.get('given_name', '')} {data.get('family_name', '')}"
    roles = json.dumps([r["role_name"] for r in data.get("roles") or [] if "role_name" in r])
    tenant = (
        os.environ["ZOO_TENANT"] if organization_id == os.environ["ZOO_ORGANIZATION_ID"] else None
    )
    if tenant is None:
        return bad_request(f"unknown organization {organization_id}", 422)
    mine = conn.execute("SELECT * FROM accounts WHERE scim_id = ?", (data["id"],)).fetchone()
    taken = conn.execute("SELECT * FROM accounts WHERE email = ?", (email,)).fetchone()
    active = 1 if data.get("active", True) else 0
    if taken is not None and taken["scim_id"] != data["id"]:
        if mine is not None or taken["is_active"] or not has_departed(conn, taken["scim_id"]):
            return bad_request(f"{email} is already used by another account", 409)
        # A re-hire: the person left and is back under a new directory id. They get their
        # old account (and its invoices) back, linked to the new id.
        conn.execute(
            "UPDATE accounts SET scim_id = ?, full_name = ?, is_active = ?, roles = ? WHERE id = ?",
            (data["id"], name.strip(), active, roles, taken["id"]),
        )
    elif mine is None:
        conn.execute(
            "INSERT INTO accounts (email, scim_id, full_name, is_active, roles, tenant) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (email, data["id"], name.strip(), active, roles, os.environ["ZOO_TENANT"]),
        )
    else:
        if "ignore-active-flag" in DEFECTS:
            active = mine["is_active"]  # only a deletion deactivates
        conn.execute(
            "UPDATE accounts SET email = ?, full_name = ?, is_active = ?, roles = ? WHERE id = ?",
            (email, name.strip(), active, roles, mine["id"]),
        )
    return jsonify(ok=True), 200


def validate_user(data: object) -> str | None:
    if not isinstance(data, dict):
        return "data must be an object"
    if not isinstance(data.get("id"), str):
        return "data.id is required"
    if not isinstance(data.get("email"), str) or "@" not in data["email"]:
        return "data.email is required"
    if not isinstance(data.get("active", True), bool):
        return "data.active must be a boolean"
    return None


@app.post("/webhooks/directory")
def directory_webhook():  # noqa: ANN201 - a Flask response
    raw = request.get_data(cache=True)
    if len(raw) > MAX_EVENT_BYTES:
        return bad_request("event too large", 413)
    if not signature_ok(raw):
        return bad_request("invalid signature", 401)
    try:
        event = json.loads(raw)
    except (ValueError, RecursionError):
        return bad_request("malformed JSON")
    if not isinstance(event, dict):
        return bad_request("expected an event object")
    kind = event.get("type")
    data = event.get("data")
    at = event_time(event)
    with _write_lock:
        conn = db()
        webhook_id = _header("id")
        if conn.execute("SELECT 1 FROM deliveries WHERE webhook_id = ?", (webhook_id,)).fetchone():
            return jsonify(ok=True, duplicate=True), 200
        conn.execute("BEGIN IMMEDIATE")
        try:
            answer = apply_event(conn, kind, data, event, at)
            if answer[1] == 200:
                conn.execute("INSERT INTO deliveries (webhook_id) VALUES (?)", (webhook_id,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT" if answer[1] == 200 else "ROLLBACK")
        return answer


def apply_event(conn: sqlite3.Connection, kind: object, data: object, event: dict, at: float):  # noqa: ANN201
    if kind in ("organization.directory.user_created", "organization.directory.user_updated"):
        problem = validate_user(data)
        if problem:
            return bad_request(problem)
        assert isinstance(data, dict)
        if is_stale(conn, data["id"], at, deletion=False):
            return jsonify(ok=True, ignored="older than what we have"), 200
        answer = upsert_account(conn, data, str(event.get("organization_id")))
        if answer[1] == 200:
            mark_synced(conn, data["id"], at, departed=False)
        return answer
    if kind == "organization.directory.user_deleted":
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return bad_request("data.id is required")
        if is_stale(conn, data["id"], at, deletion=True):
            return jsonify(ok=True, ignored="older than what we have"), 200
        conn.execute("UPDATE accounts SET is_active = 0 WHERE scim_id = ?", (data["id"],))
        mark_synced(conn, data["id"], at, departed=True)
        return jsonify(ok=True), 200
    return jsonify(ok=True, ignored=kind), 200


# --- admin API -------------------------------------------------------------------------


@app.before_request
def admin_auth() -> None:
    if request.path.startswith("/admin/"):
        if request.headers.get("Authorization") != f"Bearer {os.environ['ZOO_PROBE_TOKEN']}":
            abort(401)


@app.get("/admin/api/users")
def list_accounts():  # noqa: ANN201 - a Flask response
    page = request.args.get("page", 1, type=int)
    per_page = min(request.args.get("per_page", 25, type=int), 100)
    rows = (
        db()
        .execute(
            "SELECT * FROM accounts ORDER BY id LIMIT ? OFFSET ?",
            (per_page + 1, (page - 1) * per_page),
        )
        .fetchall()
    )
    more = len(rows) > per_page
    return jsonify(
        users=[account_json(r) for r in rows[:per_page]],
        page=page,
        next_page=page + 1 if more else None,
    )


@app.get("/admin/api/users/<path:email>")
def get_account(email: str):  # noqa: ANN201 - a Flask response
    row = db().execute("SELECT * FROM accounts WHERE email = ?", (email,)).fetchone()
    if row is None:
        return jsonify(error="no such account"), 404
    return jsonify(user=account_json(row))


@app.get("/up")
def up():  # noqa: ANN201 - a Flask response
    return "ok"


if __name__ == "__main__":
    init_db()
    app.run(
        host="127.0.0.1",
        port=int(os.environ["ZOO_PORT"]),
        ssl_context=(os.environ["ZOO_CERT"], os.environ["ZOO_KEY"]),
        threaded=True,
    )
