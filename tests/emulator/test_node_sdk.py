"""The official Scalekit Node SDK (@scalekit-sdk/node, pinned in node_sdk/package-lock.json)
against the emulator: every call the checker's Python path makes, token validation and
webhook verification. CI installs it (`npm ci` in .ci/run); elsewhere the test installs
it when npm is there, and skips when Node is not (CI never skips: it fails)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from scim_readiness.devstack.emulator import Emulator

from .receiver import run_receiver

NODE_DIR = Path(__file__).with_name("node_sdk")
SECRET = "whsec_c2NpbS1yZWFkaW5lc3MtZW11bGF0b3ItdGVzdHMhIQ=="
CALLS = [
    "getOrganization",
    "getOrganizationByExternalId",
    "listDirectories",
    "getDirectory",
    "listDirectoryUsers",
    "listDirectoryGroups",
    "listRoles",
    "generatePortalLink",
    "validateAccessToken",
    "verifyWebhookPayload",
]


def _node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI"):
            pytest.fail("Node.js and npm are required in CI (.ci/run installs them)")
        pytest.skip("Node.js/npm not installed: the Node SDK check needs them")
    if not (NODE_DIR / "node_modules" / "@scalekit-sdk" / "node").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
    return node


def test_the_node_sdk_works_against_the_emulator(emulator: Emulator, tmp_path: Path) -> None:
    node = _node()
    with run_receiver() as receiver:
        emulator.register_webhook(receiver.url, SECRET)
        directory = emulator.state.directory(emulator.directory_id)
        emulator.state.create_user(directory, user_name="node@acme-corp.example", email="")
        assert emulator.deliveries.wait_delivered(1, timeout=10)
    received = receiver.received[0]
    delivery = tmp_path / "delivery.json"
    delivery.write_text(json.dumps({"headers": received.headers, "body": received.body.decode()}))
    env = {
        **os.environ,
        "SCALEKIT_ENVIRONMENT_URL": emulator.env_url,
        "SCALEKIT_CLIENT_ID": emulator.client_id,
        "SCALEKIT_CLIENT_SECRET": emulator.client_secret,
        "SCALEKIT_ORGANIZATION_ID": emulator.organization_id,
        "SCALEKIT_ORGANIZATION_EXTERNAL_ID": emulator.organization_external_id,
        "SCALEKIT_DIRECTORY_ID": emulator.directory_id,
        "SCALEKIT_WEBHOOK_SECRET": SECRET,
        "EXPECTED_USERS": str(len(directory.users)),
        "DELIVERY_FILE": str(delivery),
        "NODE_EXTRA_CA_CERTS": str(emulator.ca_path),
        "NO_PROXY": "localhost,127.0.0.1",
        "no_proxy": "localhost,127.0.0.1",
    }
    done = subprocess.run(
        [node, "check.js"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    failed = [r for r in results if not r["ok"]]
    assert not failed, (failed, done.stderr[-2000:])
    assert [r["call"] for r in results] == CALLS, done.stderr[-2000:]
