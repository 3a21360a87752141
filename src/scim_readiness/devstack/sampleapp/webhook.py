"""What the reference app does with one webhook delivery: authenticate the raw bytes, validate,
then apply the event in one transaction (or refuse it and record nothing).

Flaws switch single decisions here; everything else stays correct so a check that fails on a
flawed app fails for the reason the flaw names.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hmac
import json
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from scim_readiness.devstack.sampleapp.settings import AppSettings
from scim_readiness.devstack.sampleapp.store import NewUser, Store, Transaction, UserRow
from scim_readiness.events import EventType, sign

#: The names an older integration guide used; the ``legacy-event-names`` flaw knows only these.
LEGACY_EVENT_NAMES: Mapping[str, EventType] = {
    "scalekit.dir.user.create": EventType.USER_CREATED,
    "scalekit.dir.user.update": EventType.USER_UPDATED,
    "scalekit.dir.user.delete": EventType.USER_DELETED,
    "scalekit.dir.group.create": EventType.GROUP_CREATED,
    "scalekit.dir.group.update": EventType.GROUP_UPDATED,
    "scalekit.dir.group.delete": EventType.GROUP_DELETED,
    "scalekit.dir.enabled": EventType.DIRECTORY_ENABLED,
    "scalekit.dir.disabled": EventType.DIRECTORY_DISABLED,
}

# Fields stored in their own columns; everything else a user event carries is kept as
# attributes so the app can show what the directory told it.
_CORE_FIELDS = frozenset({"id", "email", "name", "active", "roles", "organization_id"})

INTERNAL_ERROR = "Internal Server Error"
#: How long the ``racy-duplicate-deliveries`` flaw spends between its look-up and its insert
#: (an ORM round trip): long enough for concurrent copies of one delivery to interleave.
RACE_WINDOW_S = 0.15
#: Per update, the ``slow-update-backlog`` flaw's single worker.
BACKLOG_DELAY_S = 0.25

#: Answers ``True`` when the client closed the connection before the app acted (the server
#: polls for it; only the ``dedupe-before-apply`` flaw asks).
ClientGone = Callable[[], bool]


def occurred_at_key(value: str | None) -> str | None:
    """``occurred_at`` normalised to UTC with microseconds, so text order is time order;
    None when absent or not a timestamp (the event is then not ordered)."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any] | str


class Refused(Exception):
    """Ends handling of a delivery with ``reply`` (and rolls back anything begun)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply.body))
        self.reply = reply


def invalid(status: int, error: str, detail: str, *, field: str | None = None) -> Refused:
    """An actionable refusal: what was wrong and, when it is one field, which."""
    return Refused(
        Reply(status, {"error": error, "detail": detail, **({"field": field} if field else {})})
    )


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}.get(
        type(value), "object" if isinstance(value, dict) else type(value).__name__
    )


def _field(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    path = f"{where}.{key}" if where else key
    if key not in obj:
        raise invalid(400, "invalid_event", f"required field {path} is missing", field=path)
    return _check(obj[key], kind, path)


def _optional(
    obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any
) -> Any:
    if obj.get(key) is None:
        return default
    return _check(obj[key], kind, f"{where}.{key}")


def _check(value: Any, kind: type | tuple[type, ...], path: str) -> Any:
    # bool is an int in Python; JSON true is never a valid number or string here.
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(_type_name(k()) for k in kinds)
        raise invalid(
            400,
            "invalid_event",
            f"{path} must be {expected}, got {_type_name(value)}",
            field=path,
        )
    if isinstance(value, str) and not value.strip() and kinds == (str,):
        raise invalid(400, "invalid_event", f"{path} must not be empty", field=path)
    return value


class WebhookHandler:
    def __init__(self, settings: AppSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        # The SDK verifier needs no connection (constructing the full client would log in),
        # and the import is paid once at start-up rather than on the first delivery.
        from scalekit import ScalekitClient

        self._verifier = ScalekitClient.__new__(ScalekitClient)
        self._local = threading.local()
        self._backlog: queue.Queue[tuple[str, str, Callable[[Transaction], str]]] | None = None

    # Authentication.

    def authenticate(self, headers: Mapping[str, str], body: bytes) -> Reply | None:
        """None when the delivery is authentic (or a flaw waives the check), else the refusal."""
        settings = self.settings
        if settings.has("no-signature-check"):
            return None
        secret = settings.webhook_secret
        if not secret:
            if settings.has("skip-verify-when-secret-missing"):
                return None
            return Reply(
                503,
                {
                    "error": "not_configured",
                    "detail": "no webhook secret is configured; refusing unverifiable events",
                },
            )
        family = "svix" if settings.has("svix-headers-only") else "webhook"
        signed = {
            f"webhook-{part}": headers.get(f"{family}-{part}", "")
            for part in ("id", "timestamp", "signature")
        }
        if not all(signed.values()):
            return _unauthorized("missing webhook-id, webhook-timestamp or webhook-signature")
        if settings.has("verify-reserialized-body"):
            body = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()
        if settings.has("accept-stale-timestamp"):
            return self._hmac_only(secret, signed, body)
        try:
            ok = self._verifier.verify_webhook_payload(secret, signed, body)
        except UnicodeDecodeError:
            raise invalid(400, "invalid_body", "the body is not UTF-8 text") from None
        except (binascii.Error, ValueError, IndexError):
            return _unauthorized("malformed signature header")
        except Exception as exc:  # the SDK's WebhookVerificationError and its kin
            return _unauthorized(str(exc) or "signature verification failed")
        return None if ok else _unauthorized("signature verification failed")

    def _hmac_only(self, secret: str, signed: Mapping[str, str], body: bytes) -> Reply | None:
        try:
            expected = sign(secret, signed["webhook-id"], int(signed["webhook-timestamp"]), body)
        except ValueError:
            return _unauthorized("malformed webhook-timestamp")
        for candidate in signed["webhook-signature"].split(" "):
            if hmac.compare_digest(candidate.encode(), expected.encode()):
                return None
        return _unauthorized("no matching signature")

    # Handling.

    def handle(
        self, headers: Mapping[str, str], body: bytes, client_gone: ClientGone | None = None
    ) -> Reply:
        """The full answer to one delivery (blocking; run it off the event loop)."""
        try:
            return self._handle(headers, body, client_gone)
        except Refused as refusal:
            return refusal.reply

    def _handle(
        self, headers: Mapping[str, str], body: bytes, client_gone: ClientGone | None
    ) -> Reply:
        settings = self.settings
        if settings.has("verify-reserialized-body"):
            self._parse(body)  # this flaw parses before it can verify
        refusal = self.authenticate(headers, body)
        if refusal is not None:
            return refusal
        event = self._parse(body)
        event_id = _field(event, "id", str, "")
        raw_type = _field(event, "type", str, "")
        event_type = self._event_type(raw_type)
        if event_type is None:
            if settings.has("crash-on-unknown-event"):
                return Reply(500, INTERNAL_ERROR)
            return Reply(200, {"status": "ignored", "event_id": event_id, "reason": "unknown type"})
        organization_id = _field(event, "organization_id", str, "")
        data = _field(event, "data", dict, "")
        occurred_at = occurred_at_key(_optional(event, "occurred_at", str, "", None))
        apply = self._planner(event_type, data, organization_id, occurred_at)
        if settings.has("legacy-event-names") and raw_type not in LEGACY_EVENT_NAMES:
            # The flawed app validates the payload (its shape did not change), but its dispatch
            # has no case for current names and falls through to "ok".
            return Reply(200, {"status": "ok", "event_id": event_id})
        flawed = self._flawed_handling(
            event_type,
            event_id,
            raw_type,
            apply,
            client_gone,
            str(data.get("id", "")),
            data.get("active") is False,
        )
        if flawed is not None:
            return flawed
        with self.store.transaction() as tx:
            if not settings.has("create-not-idempotent") and tx.event_seen(event_id):
                return Reply(200, {"status": "duplicate", "event_id": event_id})
            outcome = apply(tx)
            tx.mark_event(event_id, raw_type)
        return Reply(200, {"status": outcome, "event_id": event_id})

    def _flawed_handling(
        self,
        event_type: EventType,
        event_id: str,
        raw_type: str,
        apply: Callable[[Transaction], str],
        client_gone: ClientGone | None,
        object_id: str,
        deactivation: bool,
    ) -> Reply | None:
        """The delivery flaws' ways of applying an event; None: apply it correctly."""
        settings, store = self.settings, self.store
        if (
            settings.has("slow-update-backlog")
            and event_type is EventType.USER_UPDATED
            and not deactivation
        ):
            # Profile changes go to the slow worker; deactivations keep their fast path.
            self._enqueue(event_id, raw_type, apply)
            return Reply(202, {"status": "queued", "event_id": event_id})
        if settings.has("dedupe-before-apply"):
            with store.transaction() as tx:
                if tx.event_seen(event_id):
                    return Reply(200, {"status": "duplicate", "event_id": event_id})
                tx.mark_event(event_id, raw_type)
            if client_gone is not None and client_gone():
                # The request was abandoned, with its id already marked as processed.
                return Reply(499, {"status": "abandoned", "event_id": event_id})
            with store.transaction() as tx:
                return Reply(200, {"status": apply(tx), "event_id": event_id})
        if settings.has("racy-duplicate-deliveries") and event_type is EventType.USER_CREATED:
            with store.transaction() as tx:
                if tx.event_seen(event_id):
                    return Reply(200, {"status": "duplicate", "event_id": event_id})
                absent = tx.user_by_directory_id(object_id) is None
            time.sleep(RACE_WINDOW_S)
            self._local.insert_blindly = absent
            try:
                with store.transaction() as tx:
                    outcome = apply(tx)
                    tx.mark_event(event_id, raw_type)
            finally:
                self._local.insert_blindly = False
            return Reply(200, {"status": outcome, "event_id": event_id})
        return None

    def _enqueue(self, event_id: str, raw_type: str, apply: Callable[[Transaction], str]) -> None:
        if self._backlog is None:
            self._backlog = queue.Queue()
            threading.Thread(target=self._drain, name="sampleapp-backlog", daemon=True).start()
        self._backlog.put((event_id, raw_type, apply))

    def _drain(self) -> None:
        assert self._backlog is not None  # noqa: S101 - started by _enqueue
        while True:
            event_id, raw_type, apply = self._backlog.get()
            time.sleep(BACKLOG_DELAY_S)
            try:
                with self.store.transaction() as tx:
                    if not tx.event_seen(event_id):
                        apply(tx)
                        tx.mark_event(event_id, raw_type)
            except Exception:  # noqa: S112 - a queued event that fails is dropped, as queues do
                continue

    def _parse(self, body: bytes) -> dict[str, Any]:
        try:
            event = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            if self.settings.has("crash-on-invalid-json"):
                raise Refused(Reply(500, INTERNAL_ERROR)) from None
            raise invalid(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
        except RecursionError:
            # Thousands of nested brackets exhaust the parser's stack: bad input, not a crash.
            raise invalid(
                400, "invalid_json", "the body nests JSON too deeply to be an event"
            ) from None
        if not isinstance(event, dict):
            raise invalid(
                400, "invalid_event", f"the body must be a JSON object, got {_type_name(event)}"
            )
        return event

    def _event_type(self, raw_type: str) -> EventType | None:
        if self.settings.has("legacy-event-names") and raw_type in LEGACY_EVENT_NAMES:
            return LEGACY_EVENT_NAMES[raw_type]
        try:
            return EventType(raw_type)
        except ValueError:
            return None

    def _tenant(self, organization_id: str) -> str:
        mapping = self.settings.tenant_by_org
        if self.settings.has("wrong-tenant-mapping") or not mapping:
            return organization_id
        try:
            return mapping[organization_id]
        except KeyError:
            raise invalid(
                422,
                "unknown_organization",
                f"organization {organization_id} is not linked to a tenant of this app",
                field="organization_id",
            ) from None

    def _planner(
        self,
        event_type: EventType,
        data: dict[str, Any],
        organization_id: str,
        occurred_at: str | None = None,
    ) -> Callable[[Transaction], str]:
        """Validate everything up front, then return the write to run in the transaction."""
        where = "data"
        if event_type in (EventType.USER_CREATED, EventType.USER_UPDATED):
            user = replace(self._user(data, organization_id), source_at=occurred_at)
            created = event_type is EventType.USER_CREATED
            return lambda tx: self._upsert_user(tx, user, created=created)
        if event_type is EventType.USER_DELETED:
            user_id = _field(data, "id", str, where)
            _optional(data, "email", str, where, None)
            self._tenant(organization_id)  # only linked organisations may change users
            return lambda tx: self._delete_user(tx, user_id, occurred_at)
        if event_type.object == "DirectoryGroup":
            group_id = _field(data, "id", str, where)
            display_name = _field(data, "display_name", str, where)
            directory_id = _optional(data, "directory_id", str, where, None)
            external_id = _optional(data, "external_id", str, where, None)
            tenant = self._tenant(organization_id)
            deleted = event_type is EventType.GROUP_DELETED

            def write_group(tx: Transaction) -> str:
                if not deleted and tx.group_deleted(group_id):
                    # Directory group ids are never reused: a create or update retried after
                    # the delete (a redelivery outside the original order) must not revive it.
                    return "ignored_deleted"
                renamed = tx.group_name(group_id) not in (None, display_name)
                if renamed and self.settings.has("roles-follow-group-name"):
                    # Roles looked up by the group's name, which the rename just changed.
                    tx.clear_roles_of_members(group_id)
                tx.upsert_group(
                    group_id=group_id,
                    directory_id=directory_id,
                    organization_id=organization_id,
                    tenant=tenant,
                    display_name=display_name,
                    external_id=external_id,
                    deleted=deleted,
                )
                return "group_deleted" if deleted else "group_saved"

            return write_group
        directory_id = _field(data, "id", str, where)
        enabled = _optional(data, "enabled", bool, where, event_type is EventType.DIRECTORY_ENABLED)
        provider = _optional(data, "provider", str, where, None)

        disabled = event_type is EventType.DIRECTORY_DISABLED
        if disabled:
            self._tenant(organization_id)  # only linked organisations may change users

        def write_directory(tx: Transaction) -> str:
            tx.upsert_directory(
                directory_id=directory_id,
                organization_id=organization_id,
                enabled=enabled,
                provider=provider,
            )
            if disabled and not self.settings.has("directory-disabled-ignored"):
                # Directory sync switched off: nobody it provisioned keeps access.
                self._revoke_organization(tx, organization_id)
                tx.deactivate_organization(organization_id)
                return "directory_disabled"
            return "directory_saved"

        return write_directory

    def _user(self, data: dict[str, Any], organization_id: str) -> NewUser:
        where = "data"
        directory_user_id = _field(data, "id", str, where)
        email = _field(data, "email", str, where).strip()
        if "@" not in email:
            raise invalid(
                400,
                "invalid_event",
                f"data.email {email!r} is not an email address",
                field="data.email",
            )
        active = _optional(data, "active", bool, where, True)
        roles: list[str] = []
        for index, role in enumerate(_optional(data, "roles", list, where, [])):
            entry = _check(role, dict, f"data.roles[{index}]")
            name = _field(entry, "role_name", str, f"data.roles[{index}]")
            if name not in roles:
                roles.append(name)
        for index, group in enumerate(_optional(data, "groups", list, where, [])):
            _field(_check(group, dict, f"data.groups[{index}]"), "id", str, f"data.groups[{index}]")
        given = _optional(data, "given_name", str, where, "")
        family = _optional(data, "family_name", str, where, "")
        name = _optional(data, "name", str, where, "") or f"{given} {family}".strip() or email
        if self.settings.has("ascii-only-names") and not name.isascii():
            # A latin-1/ASCII column or an encode() deep in the handler: the request dies.
            raise Refused(Reply(500, INTERNAL_ERROR))
        _optional(data, "custom_attributes", dict, where, {})
        if self.settings.has("roles-ignored"):
            roles = []
        elif self.settings.has("first-role-only"):
            roles = roles[:1]
        return NewUser(
            directory_user_id=directory_user_id,
            organization_id=organization_id,
            email=email,
            name=name,
            active=active,
            roles=tuple(roles),
            tenant=self._tenant(organization_id),
            attributes={k: v for k, v in data.items() if k not in _CORE_FIELDS},
        )

    def _upsert_user(self, tx: Transaction, user: NewUser, *, created: bool) -> str:
        flaws = self.settings.flaws
        existing = tx.user_by_directory_id(user.directory_user_id)
        # A deleted directory user id never comes back (a re-hire gets a new one), whatever
        # order its events arrive in; the resurrect flaw forgets that once a row exists.
        if (existing is None or "update-resurrects-deleted" not in flaws) and tx.tombstoned(
            user.directory_user_id
        ):
            return "ignored_deleted"
        if (
            existing is not None
            and "stale-update-wins" not in flaws
            and user.source_at is not None
            and existing.source_at is not None
            and user.source_at < existing.source_at
        ):
            return "ignored_stale"
        holder = tx.user_by_email(
            user.email,
            tenant=None if "email-unique-across-tenants" in flaws else user.tenant,
            include_deleted="email-reuse-refused" in flaws,
        )
        if holder is not None and holder.directory_user_id != user.directory_user_id:
            if "merge-on-email" in flaws:
                tx.update_user(holder.pk, user)
                return "merged"
            raise invalid(
                409,
                "email_conflict",
                f"{user.email} already belongs to directory user {holder.directory_user_id}; "
                "nothing was recorded (resolve the duplicate in the directory)",
                field="data.email",
            )
        if "create-not-idempotent" in flaws and created:
            tx.insert_user(user)
            return "created"
        if getattr(self._local, "insert_blindly", False):
            # The look-up was made in an earlier transaction; this insert trusts it.
            tx.insert_user(user)
            return "created"
        if existing is None:
            if "ignore-deactivation" in flaws:
                user = replace(user, active=True)
            tx.insert_user(user)
            return "created"
        user = self._keep_what_flaws_ignore(existing, user)
        if user.source_at is None or (existing.source_at or "") > user.source_at:
            user = replace(user, source_at=existing.source_at)
        tx.update_by_directory_id(user.directory_user_id, user)
        if not user.active:
            self._revoke(tx, user.directory_user_id)
        return "updated"

    def _keep_what_flaws_ignore(self, existing: UserRow, user: NewUser) -> NewUser:
        if self.settings.has("ignore-deactivation") and not user.active:
            user = replace(user, active=existing.active)
        if self.settings.has("roles-ignored"):
            user = replace(user, roles=existing.roles)
        return user

    def _delete_user(
        self, tx: Transaction, directory_user_id: str, occurred_at: str | None = None
    ) -> str:
        flaws = self.settings.flaws
        if "ignore-delete" in flaws:
            return "deleted"
        self._revoke(tx, directory_user_id)
        known = tx.user_by_directory_id(directory_user_id) is not None
        if "update-resurrects-deleted" in flaws and known:
            # No tombstone and no version stamp: the row is only flagged.
            tx.mark_deleted(directory_user_id)
            return "deactivated"
        if not known and "delete-before-create-forgotten" in flaws:
            return "not_found"
        # The record is kept (audit) but loses all access, and the id is tombstoned so that
        # a create or update delivered after the delete cannot bring it back.
        return "deactivated" if tx.bury(directory_user_id, occurred_at) else "tombstoned"

    def _revoke(self, tx: Transaction, directory_user_id: str) -> None:
        if not self.settings.has("sessions-survive-deprovisioning"):
            tx.revoke_credentials(directory_user_id)

    def _revoke_organization(self, tx: Transaction, organization_id: str) -> None:
        if not self.settings.has("sessions-survive-deprovisioning"):
            tx.revoke_credentials_of_organization(organization_id)


def _unauthorized(detail: str) -> Reply:
    return Reply(401, {"error": "invalid_signature", "detail": detail})


def constant_time_bearer(header: str | None, token: str) -> bool:
    """True when ``header`` is exactly ``Bearer <token>``."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())
