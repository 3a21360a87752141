"""The reference app's state: a real SQLite database, one file per run.

One connection guarded by a lock: every write is a single transaction (an event is applied
and its id recorded together, or nothing is), so concurrent deliveries cannot interleave.
Unique indexes back that up: one row per directory user id, one *live* row per email within a
tenant (a deleted user's email is free for a re-hire). Deleted directory user ids are kept as
tombstones, so a late or reordered event can never bring one back.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class UserRow:
    pk: int
    id: str
    directory_user_id: str
    organization_id: str
    email: str
    name: str
    active: bool
    roles: tuple[str, ...]
    tenant: str
    attributes: dict[str, Any]
    deleted: bool = False
    source_at: str | None = None  # occurred_at of the newest event applied to this row

    def to_json(self) -> dict[str, Any]:
        """The probe's view of a user (exactly these keys)."""
        return {
            "id": self.id,
            "directory_user_id": self.directory_user_id,
            "email": self.email,
            "name": self.name,
            "active": self.active,
            "roles": list(self.roles),
            "tenant": self.tenant,
            "attributes": self.attributes,
        }


@dataclass(frozen=True)
class NewUser:
    directory_user_id: str
    organization_id: str
    email: str
    name: str
    active: bool
    roles: tuple[str, ...]
    tenant: str
    attributes: Mapping[str, Any]
    source_at: str | None = None


_COLUMNS = (
    "pk, id, directory_user_id, organization_id, email, name, active, roles, tenant, attributes, "
    "deleted, source_at"
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def new_user_id() -> str:
    return f"usr_{secrets.token_hex(8)}"


def _row(values: tuple[Any, ...]) -> UserRow:
    pk, uid, dir_id, org, email, name, active, roles, tenant, attributes, deleted, at = values
    return UserRow(
        pk=pk,
        id=uid,
        directory_user_id=dir_id,
        organization_id=org,
        email=email,
        name=name,
        active=bool(active),
        roles=tuple(json.loads(roles)),
        tenant=tenant,
        attributes=json.loads(attributes),
        deleted=bool(deleted),
        source_at=at,
    )


class Store:
    """``unique`` False drops the uniqueness constraints (the non-idempotent flaw's schema)."""

    def __init__(
        self, path: Path, *, unique: bool = True, case_sensitive_email: bool = False
    ) -> None:
        # The case-sensitive-email flaw's store: "Ann@x" and "ann@x" are two addresses.
        self._fold = not case_sensitive_email
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        kind = "UNIQUE INDEX" if unique else "INDEX"
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(
                f"""
                CREATE TABLE IF NOT EXISTS users (
                    pk INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    directory_user_id TEXT NOT NULL,
                    organization_id TEXT NOT NULL,
                    email TEXT NOT NULL,
                    email_key TEXT NOT NULL,
                    name TEXT NOT NULL,
                    active INTEGER NOT NULL,
                    roles TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    attributes TEXT NOT NULL,
                    updated_at TEXT NOT NULL,
                    deleted INTEGER NOT NULL DEFAULT 0,
                    source_at TEXT
                );
                CREATE {kind} IF NOT EXISTS users_directory_user_id
                    ON users(directory_user_id);
                CREATE {kind} IF NOT EXISTS users_live_email
                    ON users(tenant, email_key) WHERE deleted = 0;
                CREATE TABLE IF NOT EXISTS tombstones (
                    directory_user_id TEXT PRIMARY KEY, deleted_at TEXT
                );
                CREATE TABLE IF NOT EXISTS credentials (
                    token_hash TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    directory_user_id TEXT NOT NULL
                );
                CREATE TABLE IF NOT EXISTS processed_events (
                    id TEXT PRIMARY KEY, type TEXT NOT NULL, received_at TEXT NOT NULL
                );
                CREATE TABLE IF NOT EXISTS groups (
                    id TEXT PRIMARY KEY,
                    directory_id TEXT,
                    organization_id TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    display_name TEXT NOT NULL,
                    external_id TEXT,
                    deleted INTEGER NOT NULL DEFAULT 0,
                    updated_at TEXT NOT NULL
                );
                CREATE TABLE IF NOT EXISTS directories (
                    id TEXT PRIMARY KEY,
                    organization_id TEXT NOT NULL,
                    enabled INTEGER NOT NULL,
                    provider TEXT,
                    updated_at TEXT NOT NULL
                );
                """
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One atomic unit of work; an exception rolls everything back."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._conn, fold=self._fold)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # Reads (the probe).

    def _select(
        self, where: str, params: Iterable[Any], tail: str = "", *, order: str = "pk"
    ) -> list[UserRow]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM users WHERE {where} ORDER BY {order} {tail}",  # noqa: S608
                tuple(params),
            ).fetchall()
        return [_row(row) for row in rows]

    def users_by_email(self, email: str) -> list[UserRow]:
        """Live rows first: after a re-hire the new user, not the deleted one, is the answer."""
        return self._select(
            "email_key = ?", [email_key(email, fold=self._fold)], order="deleted, pk"
        )

    def users_by_directory_id(self, directory_user_id: str) -> list[UserRow]:
        return self._select("directory_user_id = ?", [directory_user_id])

    def list_users(
        self, *, after: int = 0, limit: int = 100, tenant: str | None = None
    ) -> list[UserRow]:
        """Keyset pagination on the row key: constant cost per page at any size."""
        where, params = "pk > ?", [after]
        if tenant is not None:
            where += " AND tenant = ?"
            params.append(tenant)  # type: ignore[arg-type]
        return self._select(where, [*params, limit], "LIMIT ?")

    def count_users(self) -> int:
        with self._lock:
            (count,) = self._conn.execute("SELECT COUNT(*) FROM users").fetchone()
        return int(count)

    def groups(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, directory_id, organization_id, tenant, display_name, external_id, "
                "deleted FROM groups ORDER BY id"
            ).fetchall()
        keys = ("id", "directory_id", "organization_id", "tenant", "display_name")
        return [
            {
                **dict(zip(keys, row[:5], strict=True)),
                "external_id": row[5],
                "deleted": bool(row[6]),
            }
            for row in rows
        ]

    def processed_event_count(self) -> int:
        with self._lock:
            (count,) = self._conn.execute("SELECT COUNT(*) FROM processed_events").fetchone()
        return int(count)

    def processed_events_of_type(self, event_type: str) -> int:
        """How many distinct events of ``event_type`` the app has processed."""
        with self._lock:
            (count,) = self._conn.execute(
                "SELECT COUNT(*) FROM processed_events WHERE type = ?", (event_type,)
            ).fetchone()
        return int(count)

    def bulk_insert_users(self, users: Iterable[NewUser]) -> int:
        """Seed many users in one transaction (scale tests); returns how many."""
        stamp = _now()
        rows = ((new_user_id(), *_user_values(u, fold=self._fold), stamp) for u in users)
        with self.transaction() as tx:
            cursor = tx.conn.executemany(_INSERT, rows)
            return cursor.rowcount


def email_key(email: str, *, fold: bool = True) -> str:
    """What email uniqueness is judged on: one mailbox, whatever the case of its letters."""
    return email.strip().casefold() if fold else email.strip()


def _user_values(user: NewUser, *, fold: bool = True) -> tuple[Any, ...]:
    """A user's columns from directory_user_id to source_at, in ``_INSERT`` order."""
    return (
        user.directory_user_id,
        user.organization_id,
        user.email,
        email_key(user.email, fold=fold),  # email_key: uniqueness is case-insensitive
        user.name,
        int(user.active),
        json.dumps(list(user.roles)),
        user.tenant,
        json.dumps(dict(user.attributes), sort_keys=True),
        user.source_at,
    )


_INSERT = (
    "INSERT INTO users (id, directory_user_id, organization_id, email, email_key, name, active, "
    "roles, tenant, attributes, source_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class Transaction:
    """The statements the webhook handler needs, all inside one transaction."""

    def __init__(self, conn: sqlite3.Connection, *, fold: bool = True) -> None:
        self.conn = conn
        self._fold = fold

    def event_seen(self, event_id: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM processed_events WHERE id = ?", (event_id,))
        return row.fetchone() is not None

    def mark_event(self, event_id: str, event_type: str) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO processed_events (id, type, received_at) VALUES (?, ?, ?)",
            (event_id, event_type, _now()),
        )

    def _one(self, where: str, value: str) -> UserRow | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM users WHERE {where} ORDER BY pk LIMIT 1",  # noqa: S608
            (value,),
        ).fetchone()
        return _row(row) if row else None

    def user_by_directory_id(self, directory_user_id: str) -> UserRow | None:
        return self._one("directory_user_id = ?", directory_user_id)

    def user_by_email(
        self, email: str, *, tenant: str | None = None, include_deleted: bool = False
    ) -> UserRow | None:
        """The user holding ``email`` (within ``tenant`` when given; live users only unless
        ``include_deleted``)."""
        where, params = "email_key = ?", [email_key(email, fold=self._fold)]
        if tenant is not None:
            where += " AND tenant = ?"
            params.append(tenant)
        if not include_deleted:
            where += " AND deleted = 0"
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM users WHERE {where} ORDER BY pk LIMIT 1",  # noqa: S608
            params,
        ).fetchone()
        return _row(row) if row else None

    def insert_user(self, user: NewUser) -> str:
        uid = new_user_id()
        self.conn.execute(_INSERT, (uid, *_user_values(user, fold=self._fold), _now()))
        return uid

    def update_user(self, pk: int, user: NewUser) -> None:
        self.conn.execute(
            "UPDATE users SET directory_user_id = ?, organization_id = ?, email = ?, "
            "email_key = ?, name = ?, active = ?, roles = ?, tenant = ?, attributes = ?, "
            "source_at = ?, updated_at = ? WHERE pk = ?",
            (*_user_values(user, fold=self._fold), _now(), pk),
        )

    def update_by_directory_id(self, directory_user_id: str, user: NewUser) -> int:
        """Every row of a directory user (more than one only in the non-idempotent flaw)."""
        cursor = self.conn.execute(
            "SELECT pk FROM users WHERE directory_user_id = ?", (directory_user_id,)
        )
        pks = [pk for (pk,) in cursor.fetchall()]
        for pk in pks:
            self.update_user(pk, user)
        return len(pks)

    def tombstoned(self, directory_user_id: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM tombstones WHERE directory_user_id = ?", (directory_user_id,)
        )
        return row.fetchone() is not None

    def bury(self, directory_user_id: str, deleted_at: str | None) -> int:
        """Tombstone a directory user (known or not yet) and mark its row deleted and
        inactive; returns how many rows it had."""
        self.conn.execute(
            "INSERT OR IGNORE INTO tombstones (directory_user_id, deleted_at) VALUES (?, ?)",
            (directory_user_id, deleted_at),
        )
        cursor = self.conn.execute(
            "UPDATE users SET active = 0, deleted = 1, source_at = COALESCE(?, source_at), "
            "updated_at = ? WHERE directory_user_id = ?",
            (deleted_at, _now(), directory_user_id),
        )
        return cursor.rowcount

    def mark_deleted(self, directory_user_id: str) -> int:
        """Deleted and inactive, with no tombstone and no version (the resurrect flaw)."""
        cursor = self.conn.execute(
            "UPDATE users SET active = 0, deleted = 1, updated_at = ? WHERE directory_user_id = ?",
            (_now(), directory_user_id),
        )
        return cursor.rowcount

    def deactivate_organization(self, organization_id: str) -> int:
        cursor = self.conn.execute(
            "UPDATE users SET active = 0, updated_at = ? WHERE organization_id = ? AND active = 1",
            (_now(), organization_id),
        )
        return cursor.rowcount

    def group_deleted(self, group_id: str) -> bool:
        row = self.conn.execute("SELECT deleted FROM groups WHERE id = ?", (group_id,)).fetchone()
        return bool(row and row[0])

    def group_name(self, group_id: str) -> str | None:
        row = self.conn.execute("SELECT display_name FROM groups WHERE id = ?", (group_id,))
        found = row.fetchone()
        return str(found[0]) if found else None

    def clear_roles_of_members(self, group_id: str) -> int:
        """Take every role from the members of ``group_id`` (the group-rename flaw)."""
        rows = self.conn.execute("SELECT pk, attributes FROM users").fetchall()
        members = [
            pk
            for pk, attributes in rows
            if any(g.get("id") == group_id for g in json.loads(attributes).get("groups") or ())
        ]
        for pk in members:
            self.conn.execute("UPDATE users SET roles = '[]' WHERE pk = ?", (pk,))
        return len(members)

    # Credentials (sessions and API tokens), stored as hashes only.

    def add_credential(self, token_hash: str, kind: str, directory_user_id: str) -> None:
        self.conn.execute(
            "INSERT INTO credentials (token_hash, kind, directory_user_id) VALUES (?, ?, ?)",
            (token_hash, kind, directory_user_id),
        )

    def credential_owner(self, token_hash: str, kind: str) -> str | None:
        row = self.conn.execute(
            "SELECT directory_user_id FROM credentials WHERE token_hash = ? AND kind = ?",
            (token_hash, kind),
        ).fetchone()
        return str(row[0]) if row else None

    def revoke_credentials(self, directory_user_id: str) -> int:
        cursor = self.conn.execute(
            "DELETE FROM credentials WHERE directory_user_id = ?", (directory_user_id,)
        )
        return cursor.rowcount

    def revoke_credentials_of_organization(self, organization_id: str) -> int:
        cursor = self.conn.execute(
            "DELETE FROM credentials WHERE directory_user_id IN "
            "(SELECT directory_user_id FROM users WHERE organization_id = ?)",
            (organization_id,),
        )
        return cursor.rowcount

    def set_active(self, directory_user_id: str, active: bool) -> int:
        cursor = self.conn.execute(
            "UPDATE users SET active = ?, updated_at = ? WHERE directory_user_id = ?",
            (int(active), _now(), directory_user_id),
        )
        return cursor.rowcount

    def upsert_group(
        self,
        *,
        group_id: str,
        directory_id: str | None,
        organization_id: str,
        tenant: str,
        display_name: str,
        external_id: str | None,
        deleted: bool,
    ) -> None:
        self.conn.execute(
            "INSERT INTO groups (id, directory_id, organization_id, tenant, display_name, "
            "external_id, deleted, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET directory_id = excluded.directory_id, "
            "organization_id = excluded.organization_id, tenant = excluded.tenant, "
            "display_name = excluded.display_name, external_id = excluded.external_id, "
            "deleted = excluded.deleted, updated_at = excluded.updated_at",
            (
                group_id,
                directory_id,
                organization_id,
                tenant,
                display_name,
                external_id,
                int(deleted),
                _now(),
            ),
        )

    def upsert_directory(
        self, *, directory_id: str, organization_id: str, enabled: bool, provider: str | None
    ) -> None:
        self.conn.execute(
            "INSERT INTO directories (id, organization_id, enabled, provider, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "organization_id = excluded.organization_id, enabled = excluded.enabled, "
            "provider = excluded.provider, updated_at = excluded.updated_at",
            (directory_id, organization_id, int(enabled), provider, _now()),
        )
