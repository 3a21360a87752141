"""The embedded default: a local Scalekit (the emulator) and the reference app on loopback,
wired together, plus the readiness config that points the checker at them.

``demo`` runs the full suite against this stack; the check tests use it too, so the demo and
the tests exercise one and the same set-up. Flaws come in two kinds: the reference app's own
(``sampleapp.FLAWS``) and flaws of the Scalekit side or of the config (``STACK_FLAWS``), each
meant to be caught by exactly one check.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import yaml

from scim_readiness.errors import UsageError

if TYPE_CHECKING:
    from scim_readiness.config import Config
    from scim_readiness.devstack.emulator import Emulator, Seed
    from scim_readiness.devstack.sampleapp import RunningApp

EMBEDDING_ORIGIN = "https://app.acme-corp.example"
ROLE_MAP: Mapping[str, str] = MappingProxyType({"Engineering": "editor", "Admins": "admin"})
LATENCY_BUDGET_S = 1.0
SYNC_TIMEOUT_S = 20.0
DEMO_WAIT_S = 3.0


@dataclass(frozen=True, slots=True)
class Flaw:
    name: str
    description: str
    check: str  # the check that exists to catch it
    where: str  # "app", "scalekit" or "config"


# Which check each of the reference app's flaws is there to prove.
_APP_FLAW_CHECK: Mapping[str, str] = {
    "no-signature-check": "webhook-signature",
    "skip-verify-when-secret-missing": "webhook-signature",
    "verify-reserialized-body": "webhook-signature",
    "accept-stale-timestamp": "webhook-signature",
    "svix-headers-only": "webhook-signature",
    "create-not-idempotent": "bad-data",
    "merge-on-email": "bad-data",
    "crash-on-unknown-event": "bad-data",
    "crash-on-invalid-json": "bad-data",
    "ignore-deactivation": "user-lifecycle",
    "ignore-delete": "user-lifecycle",
    "legacy-event-names": "user-lifecycle",
    "ascii-only-names": "user-lifecycle",
    "case-sensitive-email": "bad-data",
    "roles-ignored": "group-roles",
    "first-role-only": "group-roles",
    "slow-ack": "webhook-endpoint",
    "portal-link-unauthenticated": "admin-portal",
    "wrong-tenant-mapping": "data-model",
    # Caught by the preflight: every check that needs the probe (or the webhook) is
    # ERROR "blocked by …", none FAILs.
    "probe-404": "preflight",
    "webhook-hangs": "preflight",
    "stale-update-wins": "delivery-semantics",
    "update-resurrects-deleted": "delivery-semantics",
    "delete-before-create-forgotten": "delivery-semantics",
    "racy-duplicate-deliveries": "delivery-semantics",
    "dedupe-before-apply": "delivery-semantics",
    "email-reuse-refused": "delivery-semantics",
    "email-unique-across-tenants": "delivery-semantics",
    "directory-disabled-ignored": "delivery-semantics",
    "roles-follow-group-name": "delivery-semantics",
    "slow-update-backlog": "delivery-semantics",
    "sessions-survive-deprovisioning": "user-lifecycle",
}
#: The organisation the demo keeps for tests only (linked to its own tenant in the app):
#: delivery-semantics' organisation-wide scenarios act on it, never on the real one.
TEST_ORGANIZATION_ID = "org_scimreadinesstestorganization"
TEST_ORGANIZATION_TENANT = "acme-corp-test"

STACK_FLAWS: Mapping[str, Flaw] = MappingProxyType(
    {
        flaw.name: flaw
        for flaw in (
            Flaw(
                "dir-sync-disabled",
                "the organisation does not have directory sync enabled",
                "environment",
                "scalekit",
            ),
            Flaw(
                "directory-secret-expiring",
                "the directory's only SCIM secret expires in 3 days",
                "environment",
                "scalekit",
            ),
            Flaw(
                "csp-missing-origin",
                "the portal's frame-ancestors does not admit the app's origin",
                "admin-portal",
                "scalekit",
            ),
            Flaw(
                "portal-on-scalekit-domain",
                "portal links use the Scalekit domain although a custom domain is expected",
                "admin-portal",
                "scalekit",
            ),
            Flaw(
                "role-mapping-missing",
                "the directory's role assignments lack the configured group 'Admins'",
                "group-roles",
                "scalekit",
            ),
            Flaw(
                "directory-drift",
                "a user deactivated in the directory is still active in the app",
                "data-model",
                "scalekit",
            ),
        )
    }
)


def all_flaws() -> dict[str, Flaw]:
    """Every flaw ``demo --flaw`` accepts, by name."""
    from scim_readiness.devstack.sampleapp.flaws import FLAWS

    found = {
        name: Flaw(name, description, _APP_FLAW_CHECK[name], "app")
        for name, description in FLAWS.items()
    }
    found.update(STACK_FLAWS)
    return found


def validate(names: Iterable[str]) -> tuple[str, ...]:
    known = all_flaws()
    chosen = tuple(dict.fromkeys(names))
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise UsageError(
            f"unknown flaw: {', '.join(unknown)}",
            hint="valid flaws: " + ", ".join(sorted(known)) + " (see `scim-readiness demo --list`)",
        )
    return chosen


def _new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass
class Stack:
    emulator: Emulator
    app: RunningApp
    webhook_secret: str
    workdir: Path
    flaws: tuple[str, ...]

    @property
    def custom_domain(self) -> str:
        # The emulator answers on 127.0.0.1 as well as localhost: 127.0.0.1 plays the
        # organisation's custom portal domain.
        return f"127.0.0.1:{self.emulator.port}"

    @property
    def ca_path(self) -> str:
        return str(self.emulator.ca_path)

    def secrets_env(self) -> dict[str, str]:
        """The secrets the config refers to as ${VAR}, as a real deployment would keep them."""
        emu, app = self.emulator, self.app
        return {
            "SCALEKIT_CLIENT_SECRET": emu.client_secret,
            "SCALEKIT_WEBHOOK_SECRET": self.webhook_secret,
            "SCIM_READINESS_PROBE_TOKEN": app.settings.probe_token,
            "SCIM_READINESS_PORTAL_TOKEN": app.settings.portal_token,
            "SCIM_READINESS_SCIM_TOKEN": emu.scim_token(),
        }

    def raw_config(self, *, env_refs: bool = True) -> dict[str, Any]:
        """The readiness config for this stack. With ``env_refs`` secrets are ``${VAR}``
        references (what is written to disk); without, the values themselves."""
        emu, app = self.emulator, self.app
        env = self.secrets_env()

        def secret(name: str, prefix: str = "") -> str:
            return f"{prefix}${{{name}}}" if env_refs else prefix + env[name]

        return {
            "scalekit": {
                "environment_url": emu.env_url,
                "client_id": emu.client_id,
                "client_secret": secret("SCALEKIT_CLIENT_SECRET"),
                # A loopback Scalekit is a development environment by definition.
                "expect": "development",
                "organization_id": emu.organization_id,
                "organization_external_id": emu.organization_external_id,
                "directory_id": emu.directory_id,
                "timeout_s": 5,
            },
            "webhook": {
                "url": app.webhook_url,
                "secret": secret("SCALEKIT_WEBHOOK_SECRET"),
                "allowed_hosts": ["127.0.0.1", "localhost"],
                "latency_budget_s": LATENCY_BUDGET_S,
                "health_url": app.health_url,
            },
            "probe": {
                "kind": "http",
                "http": {
                    "user_by_email": app.probe["user_by_email"],
                    "user_by_id": app.probe["user_by_id"],
                    "list_users": app.probe["list_users"],
                    "headers": {
                        "Authorization": secret("SCIM_READINESS_PROBE_TOKEN", "Bearer "),
                    },
                },
                "access": {
                    "issue": app.access["issue"],
                    "check": app.access["check"],
                    "headers": {
                        "Authorization": secret("SCIM_READINESS_PROBE_TOKEN", "Bearer "),
                    },
                },
            },
            "test_organization": {"organization_id": TEST_ORGANIZATION_ID},
            "scim_idp": {
                "url": emu.scim_url(),
                "token": secret("SCIM_READINESS_SCIM_TOKEN"),
            },
            "roles": {"map": dict(ROLE_MAP)},
            "data_model": {
                "required_attributes": ["given_name", "family_name"],
                "expected_tenant": emu.organization_external_id,
            },
            "admin_portal": {
                "expected_domain": self.custom_domain,
                "embedding_origin": EMBEDDING_ORIGIN,
                "app_link_endpoint": {
                    "url": app.portal_link_url,
                    "headers": {
                        "Authorization": secret("SCIM_READINESS_PORTAL_TOKEN", "Bearer "),
                    },
                },
                "attestations": [
                    {
                        "item": "branding",
                        "who": "demo",
                        "when": dt.date.today().isoformat(),
                        "what": "the emulator has no branding; attested to show the mechanism",
                    }
                ],
            },
            "checks": {
                "allow_mutation": True,
                "timeout_s": 120,
                # The reference app answers in milliseconds: a state it has not reached within
                # a few seconds is a defect, and a flawed demo should not wait 30 s per step.
                "user-lifecycle": {"options": {"step_timeout_s": DEMO_WAIT_S}},
                "group-roles": {"options": {"step_timeout_s": DEMO_WAIT_S}},
                "webhook-signature": {"options": {"propagation_timeout_s": DEMO_WAIT_S}},
                "bad-data": {"options": {"propagation_timeout_s": DEMO_WAIT_S}},
                # The app applies a burst of 40 updates in well under a second; a backlog that
                # needs more than a few seconds for them is a defect.
                "delivery-semantics": {
                    "options": {
                        "step_timeout_s": DEMO_WAIT_S,
                        "settle_s": 0.5,
                        "burst_size": 40,
                        "burst_budget_s": DEMO_WAIT_S,
                    }
                },
                # In the demo each flaw should fail exactly the check built for it; an app that
                # drops roles is group-roles' catch. Keep this on in a real deployment: there,
                # data-model's role reconciliation is the read-only evidence of role drift.
                "data-model": {"options": {"compare_roles": False}},
            },
            "ledger_path": str(self.workdir / "ledger.jsonl"),
        }

    def config(self, **sections: Any) -> Config:
        """The clean config as an object (secret values inline); each keyword replaces one
        top-level section (a dict updates it; None removes it)."""
        from scim_readiness.config import Config

        raw = self.raw_config(env_refs=False)
        for name, value in sections.items():
            if isinstance(value, dict) and isinstance(raw.get(name), dict):
                raw[name] = {**raw[name], **value}
            elif value is None:
                raw.pop(name, None)
            else:
                raw[name] = value
        return Config.model_validate(raw)

    def write_config(self, path: Path | None = None) -> Path:
        """Write the config (secrets as ${VAR}) and put the secrets into this process's env."""
        path = path or self.workdir / "readiness.yaml"
        header = (
            "# Written by `scim-readiness demo` for a stack on loopback; secrets are read\n"
            "# from environment variables, as they should be in a real deployment.\n"
        )
        path.write_text(header + yaml.safe_dump(self.raw_config(), sort_keys=False))
        os.environ.update(self.secrets_env())
        return path

    def sync(self) -> int:
        """Send every directory user to the app as ``user_created`` through the emulator's
        webhook delivery (an IdP's initial push) and wait until the app holds them all."""
        emu = self.emulator
        state = emu.state
        directory = state.directory(emu.directory_id)
        with state.lock:
            users = list(directory.users.values())
            for user in users:
                state.emit(
                    "organization.directory.user_created",
                    directory.organization_id,
                    state.user_data(directory, user),
                )
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        while self.app.store.count_users() < len(users):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the reference app holds {self.app.store.count_users()} of {len(users)} "
                    f"directory users after {SYNC_TIMEOUT_S:g} s"
                )
            time.sleep(0.01)
        return len(users)

    def import_directory(self) -> int:
        """Copy the directory's users straight into the app's database (a bulk import done
        before webhooks were wired up)."""
        return _import_users(self)


def _import_users(stack: Stack) -> int:
    from scim_readiness.devstack.sampleapp.store import NewUser

    emu = stack.emulator
    state = emu.state
    directory = state.directory(emu.directory_id)
    tenant = emu.organization_external_id
    with state.lock:
        rows = []
        for user in directory.users.values():
            data = state.user_data(directory, user)
            rows.append(
                NewUser(
                    directory_user_id=data["id"],
                    organization_id=directory.organization_id,
                    email=data["email"],
                    name=data.get("name") or f"{data['given_name']} {data['family_name']}",
                    active=bool(data["active"]),
                    roles=tuple(role["role_name"] for role in data.get("roles", ())),
                    tenant=tenant,
                    attributes={
                        key: data[key] for key in ("given_name", "family_name") if key in data
                    },
                )
            )
    return stack.app.store.bulk_insert_users(rows)


def _apply_seed_flaws(seed: Seed, flaws: tuple[str, ...]) -> Seed:
    seed = seed.model_copy(deep=True)
    org = seed.organizations[0]
    directory = seed.directories[0]
    if "dir-sync-disabled" in flaws:
        org.features["dir_sync"] = False
    if "directory-secret-expiring" in flaws:
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
        for item in directory.secrets:
            item.expire_time = soon
    if "role-mapping-missing" in flaws:
        directory.role_assignments = {
            group: role for group, role in directory.role_assignments.items() if group != "Admins"
        }
    frame_ancestors = ["'self'"]
    if "csp-missing-origin" not in flaws:
        frame_ancestors.append(EMBEDDING_ORIGIN)
    seed.portal.frame_ancestors = frame_ancestors
    return seed


@contextlib.contextmanager
def start_stack(
    flaws: Iterable[str] = (),
    *,
    seed: Seed | None = None,
    workdir: Path | None = None,
    delivery_delay_scale: float = 0.01,
    sync: bool = True,
) -> Iterator[Stack]:
    """Start the emulator and the reference app (with ``flaws``) on loopback.

    The process is made to trust the emulator's CA (one per process; grpc reads it once).
    """
    import tempfile

    from scim_readiness.devstack.emulator import default_seed, process_ca, start_emulator, trust_env
    from scim_readiness.devstack.sampleapp import AppSettings, serve_app

    chosen = validate(flaws)
    ca = process_ca()
    trust_env(ca.ca_path)
    seed = _apply_seed_flaws(seed or default_seed(), chosen)
    owned_dir = workdir is None
    root = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="scim-readiness-demo-"))
    secret = _new_webhook_secret()
    cert = ca.issue("127.0.0.1", "localhost")
    app_flaws = frozenset(name for name in chosen if name not in STACK_FLAWS)
    try:
        with start_emulator(seed, delivery_delay_scale=delivery_delay_scale) as emu:
            if "portal-on-scalekit-domain" not in chosen:
                # Known only once the port is: portal links are then made on the custom domain.
                emu.state.seed.portal.domain = f"127.0.0.1:{emu.port}"
            settings = AppSettings(
                webhook_secret=(None if "skip-verify-when-secret-missing" in app_flaws else secret),
                probe_token=secrets.token_urlsafe(18),
                portal_token=secrets.token_urlsafe(18),
                flaws=app_flaws,
                tenant_by_org={
                    emu.organization_id: emu.organization_external_id,
                    TEST_ORGANIZATION_ID: TEST_ORGANIZATION_TENANT,
                },
                db_path=root / "app.sqlite3",
                scalekit_env_url=emu.env_url,
                scalekit_client_id=emu.client_id,
                scalekit_client_secret=emu.client_secret,
                scalekit_ca_path=emu.ca_path,
                slow_ack_s=LATENCY_BUDGET_S + 0.5,
            )
            with serve_app(settings, cert) as app:
                emu.register_webhook(app.webhook_url, secret)
                stack = Stack(emu, app, secret, root, chosen)
                if sync and {"legacy-event-names", "webhook-hangs"} & set(chosen):
                    # Such an app never processes today's user_created, so it cannot be
                    # filled by events: its users came from an earlier import.
                    stack.import_directory()
                elif sync:
                    stack.sync()
                if "directory-drift" in chosen:
                    _drift(stack)
                yield stack
                # Each server waits for its requests in flight before it stops: stop both
                # side by side instead of one after the other.
                _stop_together(app, emu)
    finally:
        if owned_dir:
            import shutil

            shutil.rmtree(root, ignore_errors=True)


def _drift(stack: Stack) -> None:
    """Deactivate one directory user without telling the app: the drift an outage or a
    dropped webhook leaves behind."""
    emu = stack.emulator
    directory = emu.state.directory(emu.directory_id)
    with emu.state.lock:
        user = next(u for u in directory.users.values() if u.active)
        user.active = False


def _stop_together(app: RunningApp, emu: Emulator) -> None:
    """Stop the app and the emulator concurrently (both stops are idempotent, so the
    context managers' own stops are then no-ops)."""
    import threading

    stopper = threading.Thread(target=app.stop, name="scim-readiness-demo-stop", daemon=True)
    stopper.start()
    emu.stop()
    stopper.join()
