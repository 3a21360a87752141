"""A zoo receiver on loopback beside the emulator, and the readiness config a user of it
would write: the receiver is a separate process (Python or Node), written in its own style,
and known to the checker only through its webhook URL and its probe."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from scim_readiness.config import Config
from scim_readiness.engine.runner import RunOptions, run_suite
from scim_readiness.model import Report

HERE = Path(__file__).parent
ROLE_MAP = {"Engineering": "editor", "Admins": "admin"}
EMBEDDING_ORIGIN = "https://app.acme-corp.example"
START_TIMEOUT_S = 60.0
SYNC_TIMEOUT_S = 30.0
# Each receiver answers within a second; a step it has not reached after a few is a defect.
STEP_S = 4.0


@dataclass(frozen=True)
class Receiver:
    """How to start one zoo receiver and how its author's probe is described."""

    name: str
    argv: tuple[str, ...]
    webhook_path: str
    health_path: str
    probe: Mapping[str, Any]  # probe.http keys; "{base}" is the receiver's https origin


@dataclass
class Running:
    receiver: Receiver
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def webhook_url(self) -> str:
        return self.base + self.receiver.webhook_path

    def probe_section(self, token: str) -> dict[str, Any]:
        http = {
            key: value.replace("{base}", self.base) if isinstance(value, str) else value
            for key, value in self.receiver.probe.items()
        }
        http["headers"] = {"Authorization": f"Bearer {token}"}
        return {"kind": "http", "http": http}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def start_receiver(
    receiver: Receiver, *, env: Mapping[str, str], workdir: Path, ca_path: str
) -> Iterator[Running]:
    port = _free_port()
    log = workdir / f"{receiver.name}.log"
    full_env = {**os.environ, **env, "ZOO_PORT": str(port)}
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed argv of a test fixture
            list(receiver.argv), env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=HERE
        )
    running = Running(receiver, f"https://127.0.0.1:{port}", process, log)
    try:
        _wait_healthy(running, ca_path)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_healthy(running: Running, ca_path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    url = running.base + running.receiver.health_path
    import ssl

    trust = ssl.create_default_context(cafile=ca_path)
    with httpx.Client(verify=trust, timeout=2) as client:
        while time.monotonic() < deadline:
            if running.process.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(
        f"{running.receiver.name} did not come up: " + running.log.read_text(errors="replace")
    )


@dataclass
class ZooStack:
    emulator: Any
    app: Running
    secret: str
    probe_token: str
    workdir: Path

    def config(self) -> Config:
        emu = self.emulator
        return Config.model_validate(
            {
                "scalekit": {
                    "environment_url": emu.env_url,
                    "client_id": emu.client_id,
                    "client_secret": emu.client_secret,
                    "expect": "development",
                    "organization_id": emu.organization_id,
                    "organization_external_id": emu.organization_external_id,
                    "directory_id": emu.directory_id,
                    "timeout_s": 10,
                },
                "webhook": {
                    "url": self.app.webhook_url,
                    "secret": self.secret,
                    "allowed_hosts": ["127.0.0.1", "localhost"],
                    "latency_budget_s": 1.0,
                    "health_url": self.app.base + self.app.receiver.health_path,
                },
                "probe": self.app.probe_section(self.probe_token),
                "roles": {"map": dict(ROLE_MAP)},
                "data_model": {
                    "required_attributes": ["given_name", "family_name"],
                    "expected_tenant": emu.organization_external_id,
                },
                "admin_portal": {
                    "expected_domain": f"127.0.0.1:{emu.port}",
                    "embedding_origin": EMBEDDING_ORIGIN,
                    "attestations": [
                        {
                            "item": "branding",
                            "who": "zoo",
                            "when": "2026-01-01",
                            "what": "the emulator has no branding",
                        }
                    ],
                },
                "checks": {
                    "allow_mutation": True,
                    "timeout_s": 300,
                    "user-lifecycle": {"options": {"step_timeout_s": STEP_S}},
                    "group-roles": {"options": {"step_timeout_s": STEP_S}},
                    "webhook-signature": {"options": {"propagation_timeout_s": STEP_S}},
                    "bad-data": {"options": {"propagation_timeout_s": STEP_S}},
                },
                "ledger_path": str(self.workdir / "ledger.jsonl"),
            }
        )

    def run(self) -> Report:
        options = RunOptions(ca_bundle=str(self.emulator.ca_path), yes=True)
        return asyncio.run(run_suite(self.config(), options))

    def sync(self) -> None:
        """The IdP's initial push: every directory user as user_created, then wait until the
        receiver lists them all (through its own probe)."""
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
        while (held := self.count_users()) < len(users):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.app.receiver.name} holds {held} of {len(users)} users: "
                    + self.app.log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.05)

    def count_users(self) -> int:
        from scim_readiness.clients.http import TlsSettings
        from scim_readiness.clients.probe import build_probe
        from scim_readiness.config import ProbeSection

        section = ProbeSection.model_validate(self.app.probe_section(self.probe_token))

        async def count() -> int:
            probe = build_probe(section, TlsSettings(ca_bundle=str(self.emulator.ca_path)))
            try:
                return len([user async for user in probe.list_users()])
            finally:
                await probe.aclose()

        return asyncio.run(count())


@contextlib.contextmanager
def zoo_stack(
    receiver: Receiver, workdir: Path, *, defects: tuple[str, ...] = ()
) -> Iterator[ZooStack]:
    import base64
    import secrets

    from scim_readiness.devstack.demo_stack import _apply_seed_flaws
    from scim_readiness.devstack.emulator import default_seed, process_ca, start_emulator, trust_env

    ca = process_ca()
    trust_env(ca.ca_path)
    cert = ca.issue("127.0.0.1", "localhost")
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    token = secrets.token_urlsafe(18)
    with start_emulator(_apply_seed_flaws(default_seed(), ()), delivery_delay_scale=0.001) as emu:
        emu.state.seed.portal.domain = f"127.0.0.1:{emu.port}"
        env = {
            "ZOO_CERT": str(cert.cert_path),
            "ZOO_KEY": str(cert.key_path),
            "ZOO_WEBHOOK_SECRET": secret,
            "ZOO_PROBE_TOKEN": token,
            "ZOO_ORGANIZATION_ID": emu.organization_id,
            "ZOO_TENANT": emu.organization_external_id,
            "ZOO_DB": str(workdir / f"{receiver.name}.db"),
            "ZOO_DEFECTS": ",".join(defects),
            "ZOO_SCALEKIT_ENV_URL": emu.env_url,
            "ZOO_SCALEKIT_CLIENT_ID": emu.client_id,
            "ZOO_SCALEKIT_CLIENT_SECRET": emu.client_secret,
            "PYTHONPATH": os.pathsep.join(sys.path),
        }
        with start_receiver(receiver, env=env, workdir=workdir, ca_path=str(emu.ca_path)) as app:
            emu.register_webhook(app.webhook_url, secret)
            stack = ZooStack(emu, app, secret, token, workdir)
            stack.sync()
            yield stack


def explain(report: Report) -> list[str]:
    return [
        f"{check.id} {check.status}: {f.status} {f.title}: {f.observed[:300]}"
        for check in report.checks
        for f in check.findings
        if f.status.value not in ("PASS", "ATTESTED")
    ]
