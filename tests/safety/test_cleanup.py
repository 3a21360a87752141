"""`scim-readiness cleanup` and the runner's end-of-run sweep, against the demo stack.

Test users are created the way the checks create them (the provisioning drivers, which keep
the ledger), then left behind on purpose, as a killed run leaves them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from scim_readiness.clients.http import TlsSettings, make_async_client
from scim_readiness.engine.registry import CheckSpec
from scim_readiness.model import Status
from scim_readiness.parts import CheckParts
from scim_readiness.plugin.context import CheckContext
from scim_readiness.plugin.contract import CheckInfo, SystemClock
from scim_readiness.plugin.identities import TestIdentities, new_run_id
from scim_readiness.plugin.ledger import Ledger
from scim_readiness.provisioning.drivers import Channels, DriverRecords, ProvisioningDriver
from scim_readiness.webhooks.sender import Senders

from .conftest import closed_url, leftovers, run_cli, write_config

if TYPE_CHECKING:
    from scim_readiness.config import Config
    from scim_readiness.devstack.demo_stack import Stack


def _events_driver(
    config: Config, ledger: Path, tls: TlsSettings
) -> tuple[ProvisioningDriver, TestIdentities]:
    """An events driver recording as user-lifecycle in a new run, made from the config and
    the ledger alone (as the sweep makes its own), and that run's test identities."""
    names = config.test_identities
    identities = TestIdentities(
        new_run_id(), email_domain=names.email_domain, name_prefix=names.name_prefix
    )
    channels = Channels(
        config=config,
        records=DriverRecords(Ledger(ledger, identities.run_id), "user-lifecycle", config.scalekit),
        senders=Senders(config, tls, SystemClock(), identities),
        http=lambda timeout_s: make_async_client(tls, timeout_s=timeout_s),
    )
    return channels.driver("events"), identities


def _leave_user_behind(config: Config, ledger: Path, stack: Stack, label: str) -> str:
    """Create one active test user in the app through signed events, as user-lifecycle
    would, and return its email; nothing removes it."""

    async def create() -> str:
        driver, identities = _events_driver(config, ledger, TlsSettings(ca_bundle=stack.ca_path))
        try:
            user = await driver.create_user(identities.user(label))
        finally:
            await driver.aclose()
        return user.email

    email = asyncio.run(create())
    assert stack.app.store.users_by_email(email)[0].active
    return email


def test_cleanup_removes_what_a_killed_run_left_and_reports_it(
    stack: Stack, tmp_path: Path
) -> None:
    path = write_config(stack, tmp_path / "readiness.yaml")
    ledger = tmp_path / "ledger.jsonl"
    email = _leave_user_behind(stack.config(ledger_path=str(ledger)), ledger, stack, "killed")
    listed = run_cli("cleanup", "-c", str(path), "--list")
    assert listed.returncode == 1 and email in listed.stdout
    # The next run says so before it starts.
    warned = run_cli("run", "-c", str(path), "--only", "environment", "--ca-bundle", stack.ca_path)
    assert "earlier runs left 1 test object(s)" in warned.stderr, warned.stderr
    assert stack.app.store.users_by_email(email)[0].active  # --list removes nothing
    done = run_cli("cleanup", "-c", str(path), "--ca-bundle", stack.ca_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "removed" in done.stdout and email in done.stdout
    assert not leftovers(stack)
    assert Ledger(ledger, "").outstanding() == []
    again = run_cli("cleanup", "-c", str(path), "--ca-bundle", stack.ca_path)
    assert again.returncode == 0 and "nothing outstanding" in again.stdout


def test_cleanup_says_what_it_could_not_remove_and_retries_later(
    stack: Stack, tmp_path: Path
) -> None:
    good = write_config(stack, tmp_path / "readiness.yaml")
    ledger = tmp_path / "ledger.jsonl"
    email = _leave_user_behind(stack.config(ledger_path=str(ledger)), ledger, stack, "stuck")
    broken = write_config(
        stack, tmp_path / "broken.yaml", webhook={"url": closed_url("/webhooks/scalekit")}
    )
    done = run_cli("cleanup", "-c", str(broken), "--ca-bundle", stack.ca_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NOT removed" in done.stdout and email in done.stdout
    assert "connect" in done.stdout.lower() or "refused" in done.stdout.lower(), done.stdout
    assert "Traceback" not in done.stderr
    states = [json.loads(line)["state"] for line in ledger.read_text().splitlines()]
    assert "unremovable" in states
    assert stack.app.store.users_by_email(email)[0].active
    done = run_cli("cleanup", "-c", str(good), "--ca-bundle", stack.ca_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not leftovers(stack)


def test_cleanup_never_touches_what_is_not_named_as_a_test_identity(
    stack: Stack, tmp_path: Path
) -> None:
    path = write_config(stack, tmp_path / "readiness.yaml")
    ledger = Ledger(tmp_path / "ledger.jsonl", new_run_id())
    real = stack.app.store.list_users(limit=1)[0]
    # A hand-edited (or foreign) ledger line naming a real person.
    ledger.created("user", real.directory_user_id, channel="events", check_id="x", email=real.email)
    done = run_cli("cleanup", "-c", str(path), "--ca-bundle", stack.ca_path)
    assert done.returncode == 1
    assert "REFUSED" in done.stdout and "not a test identity" in done.stdout
    assert stack.app.store.users_by_email(real.email)[0].active


def test_the_runner_sweeps_what_a_check_left_and_flags_what_it_cannot(
    stack: Stack, tmp_path: Path
) -> None:
    """A check without a cleanup of its own leaves a user: the end-of-run sweep removes it;
    when the channel is down, the check gets an ERROR finding listing what is left."""
    from scim_readiness.engine.runner import RunOptions, run_suite

    created: list[str] = []

    async def leaves_a_user(ctx: CheckContext) -> None:
        driver = CheckParts(ctx).driver("events")
        try:
            created.append((await driver.create_user(ctx.identities.user("swept"))).email)
        finally:
            await driver.aclose()
        # The events channel is gone from here on (for the second run).
        ctx.findings.passed("created a user and did not remove it")

    spec = CheckSpec(
        CheckInfo(id="leaky", title="leaky", checklist_item=0, mutates=True), leaves_a_user
    )
    options = RunOptions(ca_bundle=stack.ca_path)
    config = stack.config(ledger_path=str(tmp_path / "ledger.jsonl"))
    report = asyncio.run(run_suite(config, options, specs=[spec]))
    assert report.checks[0].status is Status.PASS
    assert not leftovers(stack), created
    assert Ledger(tmp_path / "ledger.jsonl", "").outstanding() == []

    # Now with the webhook unreachable for the sweep: the user cannot be created either, so
    # leave one first, then point the config at a closed port.
    ledger = tmp_path / "ledger2.jsonl"
    email = _leave_user_behind(stack.config(ledger_path=str(ledger)), ledger, stack, "flag")
    entries = Ledger(ledger, "").outstanding()
    broken = stack.config(ledger_path=str(ledger), webhook={"url": closed_url("/webhooks/x")})

    async def sweep() -> list[Status]:
        from scim_readiness.engine.sweep import sweep_run
        from scim_readiness.model import CheckResult, Finding

        result = CheckResult(
            id="user-lifecycle",
            title="t",
            checklist_item=4,
            status=Status.PASS,
            findings=(Finding("ran", Status.PASS),),
        )
        swept = await sweep_run(
            broken, Ledger(ledger, entries[0].run_id), [result], tls=TlsSettings(stack.ca_path)
        )
        assert "could not be removed" in swept[0].findings[-1].title
        assert email in swept[0].findings[-1].observed
        return [swept[0].status]

    assert asyncio.run(sweep()) == [Status.ERROR]
    done = run_cli(
        "cleanup", "-c", str(write_config(stack, tmp_path / "r.yaml")), "--ledger", str(ledger),
        "--ca-bundle", stack.ca_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert not leftovers(stack)


def test_a_run_id_that_names_the_organisation_does_not_make_a_user_a_test_identity() -> None:
    from scim_readiness.engine.sweep import looks_like_test_object
    from scim_readiness.plugin.ledger import LedgerEntry

    def entry(run_id: str, object_id: str, **details: str) -> LedgerEntry:
        return LedgerEntry(run_id, "user", object_id, "events", "x", "created", 0.0, details)

    org = "org_60219377000000001"
    forged = entry(org, "diruser_real", email="alice@acme.example", organization_id=org)
    assert not looks_like_test_object(forged, "zz-scim-readiness", "example.invalid")
    run = "srabcdef0123"
    genuine = entry(
        run,
        f"diruser_{run}lifecycle",
        email=f"zz-scim-readiness+{run}-lifecycle@example.invalid",
        organization_id=org,
    )
    assert looks_like_test_object(genuine, "zz-scim-readiness", "example.invalid")
    # an id alone, without the test email, no longer proves anything
    no_email = entry(run, f"diruser_{run}lifecycle", organization_id=org)
    assert not looks_like_test_object(no_email, "zz-scim-readiness", "example.invalid")


def _forged(ledger_path: Path, run_id: str, object_id: str, email: str) -> None:
    """Append a ledger line as an attacker who can write the workspace would."""
    line = {
        "run_id": run_id,
        "kind": "user",
        "object_id": object_id,
        "channel": "events",
        "check_id": "user-lifecycle",
        "state": "created",
        "at": 0,
        "details": {"email": email, "organization_id": "org_1"},
    }
    with ledger_path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def test_a_forged_ledger_line_never_deprovisions_a_real_person(
    stack: Stack, tmp_path: Path
) -> None:
    """The line from the report: its run id names the company, which occurs in the real
    person's email. Cleanup refuses it, says so, and sends the app nothing at all."""
    path = write_config(stack, tmp_path / "readiness.yaml")
    ledger = tmp_path / "ledger.jsonl"
    real = stack.app.store.list_users(limit=1)[0]
    _forged(ledger, "acme-corp", real.directory_user_id, "edsger.dijkstra@acme-corp.example")
    # A valid-looking run id does not help a line whose email is not a test identity of it.
    _forged(ledger, new_run_id(), real.directory_user_id, real.email)
    before = stack.app.store.processed_event_count()
    done = run_cli(
        "cleanup", "-c", str(path), "--ledger", str(ledger), "--ca-bundle", stack.ca_path
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.count("REFUSED") == 2, done.stdout
    assert "run id 'acme-corp' is not one this tool makes" in done.stdout
    assert "REFUSED" in done.stderr and "Traceback" not in done.stderr
    assert stack.app.store.processed_event_count() == before  # not one delivery was applied
    assert stack.app.store.users_by_directory_id(real.directory_user_id)[0].active


def test_a_line_named_like_a_test_identity_is_refused_when_the_app_shows_a_real_person(
    stack: Stack, tmp_path: Path
) -> None:
    """Names on the line are only half the proof: where a probe is configured, the app's
    own record under that directory user id must be a test identity too."""
    from scim_readiness.devstack.sampleapp.store import NewUser

    path = write_config(stack, tmp_path / "readiness.yaml")
    ledger = tmp_path / "ledger.jsonl"
    run_id = new_run_id()
    planted = f"diruser_{run_id}lifecycle"
    stack.app.store.bulk_insert_users(
        [
            NewUser(
                directory_user_id=planted,
                organization_id=stack.emulator.organization_id,
                email=f"grace.hopper.{run_id[-6:]}@acme-corp.example",
                name="Grace Hopper",
                active=True,
                roles=(),
                tenant="acme",
                attributes={},
            )
        ]
    )
    _forged(ledger, run_id, planted, f"zz-scim-readiness+{run_id}-lifecycle@example.invalid")
    before = stack.app.store.processed_event_count()
    done = run_cli(
        "cleanup", "-c", str(path), "--ledger", str(ledger), "--ca-bundle", stack.ca_path
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REFUSED" in done.stdout, done.stdout
    assert stack.app.store.processed_event_count() == before
    assert stack.app.store.users_by_directory_id(planted)[0].active


def test_refusal_reasons_name_what_the_line_fails_to_prove() -> None:
    from scim_readiness.plugin.identities import refusal_reason
    from scim_readiness.plugin.ledger import LedgerEntry

    prefix, domain = "zz-scim-readiness", "example.invalid"
    run = "sr0123456789"

    def user(
        run_id: str, object_id: str, email: str, channel: Literal["events", "scim"] = "events"
    ) -> LedgerEntry:
        return LedgerEntry(
            run_id, "user", object_id, channel, "x", "created", 0.0, {"email": email}
        )

    ok = user(run, f"diruser_{run}a", f"ZZ-scim-readiness+{run}-a@Example.invalid")
    assert refusal_reason(ok, prefix, domain) is None
    # a SCIM id is the directory's; the email proves the name, the directory is asked later
    assert (
        refusal_reason(user(run, "scim-1", f"{prefix}+{run}-a@{domain}", "scim"), prefix, domain)
        is None
    )
    assert "run id" in str(
        refusal_reason(user("sr1", "diruser_sr1", f"{prefix}+sr1-a@{domain}"), prefix, domain)
    )
    other_run = user(run, f"diruser_{run}a", f"{prefix}+sr9999999999-a@{domain}")
    assert "email" in str(refusal_reason(other_run, prefix, domain))
    assert "email" in str(
        refusal_reason(
            user(run, f"diruser_{run}a", f"{prefix}+{run}-a@evil.example"), prefix, domain
        )
    )
    assert "directory user id" in str(
        refusal_reason(user(run, "diruser_1796", f"{prefix}+{run}-a@{domain}"), prefix, domain)
    )
    group = LedgerEntry(
        run, "group", "dirgroup_x", "events", "x", "created", 0.0, {"display_name": "Engineering"}
    )
    assert "group name" in str(refusal_reason(group, prefix, domain))


def test_runs_against_a_down_webhook_leave_nothing_to_count(stack: Stack, tmp_path: Path) -> None:
    """Against a down webhook nothing is left to count, so the "earlier runs left N" warning
    does not grow run after run (it went 15 -> 75 over five runs): the preflight finds the
    webhook down before any check records a test user (and a user whose every delivery was
    refused at the connection is closed as never created)."""
    path = write_config(stack, tmp_path / "readiness.yaml", webhook={"url": closed_url("/hook")})
    ledger = tmp_path / "ledger.jsonl"
    for _ in range(3):
        done = run_cli("run", "-c", str(path), "--ca-bundle", stack.ca_path, "--format", "plain")
        assert "Traceback" not in done.stderr
        assert "earlier runs left" not in done.stderr, done.stderr
        assert "could not be removed" not in done.stdout, done.stdout
        assert "blocked by the webhook preflight" in done.stdout, done.stdout
    assert not ledger.exists() or Ledger(ledger, "").outstanding() == []


class _EmailKeyedApp:
    """A receiver written the other way round from the reference app: users are keyed by
    email, so an email change arrives as a new record and the one under the earlier email
    stays; ``user_deleted`` deactivates the record under the email it names."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.users: dict[str, dict[str, object]] = {}
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: object = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                event = json.loads(self.rfile.read(int(self.headers["content-length"])))
                data, kind = event["data"], event["type"].rsplit(".", 1)[-1]
                email = str(data.get("email") or "").lower()
                if kind in ("user_created", "user_updated") and email:
                    app.users[email] = {
                        "id": email,
                        "email": email,
                        "active": bool(data.get("active", True)),
                    }
                elif kind == "user_deleted" and email in app.users:
                    app.users[email]["active"] = False
                self._answer(200, {})

            def do_GET(self) -> None:
                from urllib.parse import parse_qs, urlparse

                email = parse_qs(urlparse(self.path).query).get("email", [""])[0].lower()
                found = app.users.get(email)
                self._answer(200, found) if found else self._answer(404, {"error": "no user"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def active_test_users(self) -> list[str]:
        return [e for e, u in self.users.items() if u["active"] and "zz-scim-readiness" in e]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_cleanup_removes_a_test_user_under_every_email_it_ever_had(
    stack: Stack, tmp_path: Path
) -> None:
    """Against an app keyed by email, user-lifecycle's email change left an active test user
    under the earlier email, and the ledger said removed."""
    app = _EmailKeyedApp()
    try:
        path = write_config(
            stack,
            tmp_path / "readiness.yaml",
            webhook={"url": app.url + "/hook", "health_url": None},
            probe={
                "kind": "http",
                "http": {"user_by_email": app.url + "/users?email={email}"},
            },
        )
        config = stack.config(
            ledger_path=str(tmp_path / "ledger.jsonl"),
            webhook={"url": app.url + "/hook", "health_url": None},
            probe={"kind": "http", "http": {"user_by_email": app.url + "/users?email={email}"}},
        )
        ledger = tmp_path / "ledger.jsonl"

        async def create_and_rename() -> None:
            driver, identities = _events_driver(config, ledger, TlsSettings(stack.ca_path))
            try:
                user = await driver.create_user(identities.user("renamed"))
                await driver.change_email(user, identities.user("renamed-new").email)
            finally:
                await driver.aclose()

        asyncio.run(create_and_rename())
        assert len(app.active_test_users()) == 2  # the app now holds both addresses
        done = run_cli("cleanup", "-c", str(path), "--ca-bundle", stack.ca_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert app.active_test_users() == []
        assert Ledger(ledger, "").outstanding() == []
    finally:
        app.close()


def test_a_forged_line_beside_a_genuine_one_of_the_same_run_and_check_is_never_acted_on(
    stack: Stack, tmp_path: Path
) -> None:
    """The removal code reads the ledger again for the whole (run, check) group; a forged
    line that copies a genuine line's run id and check id must not ride along with it."""
    path = write_config(stack, tmp_path / "readiness.yaml")
    ledger = tmp_path / "ledger.jsonl"
    email = _leave_user_behind(stack.config(ledger_path=str(ledger)), ledger, stack, "genuine")
    run_id = json.loads(ledger.read_text().splitlines()[0])["run_id"]
    real = stack.app.store.list_users(limit=1)[0]
    assert real.active and "zz-scim-readiness" not in real.email
    _forged(ledger, run_id, real.directory_user_id, real.email)
    done = run_cli("cleanup", "-c", str(path), "--ca-bundle", stack.ca_path)
    assert "REFUSED" in done.stdout, done.stdout + done.stderr
    assert f"removed        user diruser_{run_id}" in done.stdout, done.stdout
    assert not stack.app.store.users_by_email(email)[0].active  # the genuine one is gone
    assert stack.app.store.users_by_directory_id(real.directory_user_id)[0].active
