"""Seeds from YAML (and their errors), large generated directories, and `emulate`."""

from __future__ import annotations

import io
import json
import re
import shlex
import threading
import time
from pathlib import Path

import pytest

from scim_readiness.devstack.emulator import Emulator, Seed, start_emulator
from scim_readiness.devstack.emulator.serve import serve_forever
from scim_readiness.errors import ConfigError, UsageError

from .conftest import run, section_for, tls_for

SEED_YAML = """
environment_id: env_1
client_id: skc_custom
client_secret: custom-secret
roles:
  - {name: owner}
  - {name: member}
portal:
  frame_ancestors: ["https://app.example"]
  link_lifetime_s: 30
organizations:
  - id: org_a
    display_name: Initech
    external_id: tenant-initech
    features: {dir_sync: false}
directories:
  - id: dir_a
    organization_id: org_a
    provider: MICROSOFT_AD
    enabled: false
    scim_token: tok-a
    secrets:
      - {status: INACTIVE, expire_time: 2020-01-01T00:00:00Z}
    role_assignments: {Owners: owner}
    groups: [{display_name: Owners}]
    users:
      - {user_name: peter@initech.example, given_name: Peter, family_name: Gibbons,
         groups: [Owners], attributes: {department: TPS}}
"""


def test_yaml_seed_drives_what_the_sdk_sees(tmp_path: Path) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(SEED_YAML)
    seed = Seed.from_yaml(path)
    with start_emulator(seed) as emu:
        assert emu.client_id == "skc_custom"

        async def scenario() -> None:
            from scim_readiness.clients.scalekit import connect

            gw = await connect(section_for(emu), tls_for(emu))
            try:
                org = await gw.get_organization_by_external_id("tenant-initech")
                assert org.features == {"dir_sync": False}
                (directory,) = await gw.list_directories("org_a")
                assert (directory.provider, directory.enabled) == ("MICROSOFT_AD", False)
                assert [s.status for s in directory.secrets] == ["INACTIVE"]
                assert [r.name for r in await gw.list_roles()] == ["owner", "member"]
                users = [u async for p in gw.iter_directory_users("org_a", "dir_a") for u in p]
                assert [(u.given_name, u.roles) for u in users] == [("Peter", ("owner",))]
                assert users[0].detail["department"] == "TPS"
            finally:
                await gw.aclose()

        run(scenario())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("organizations: [\n  - id: x\n   bad", r"seed\.yaml:\d+: .*not valid YAML"),
        ("colour: blue", "colour"),
        (
            "organizations: [{id: o, display_name: O}]\n"
            "directories: [{id: d, organization_id: nope}]",
            "nope",
        ),
        (
            "organizations: [{id: o, display_name: O}]\n"
            "directories: [{id: d, organization_id: o, provider: OKTAA}]",
            "OKTAA",
        ),
        ("- just\n- a list", "mapping"),
    ],
)
def test_bad_seed_files_are_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as info:
        Seed.from_yaml(path)
    assert str(path) in str(info.value)


def test_missing_seed_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        Seed.from_yaml("/nonexistent/seed.yaml")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pages_100000_users_through_the_sdk(emulator: Emulator) -> None:
    emulator.generate_users(n=99_995)

    async def scenario() -> int:
        from scim_readiness.clients.scalekit import connect

        gw = await connect(section_for(emulator, timeout_s=30), tls_for(emulator))
        try:
            ids: set[str] = set()
            async for page in gw.iter_directory_users(
                emulator.organization_id, emulator.directory_id
            ):
                ids.update(u.id for u in page)
            return len(ids)
        finally:
            await gw.aclose()

    assert run(scenario()) == 100_000


def _serve(**kwargs: object) -> tuple[threading.Thread, io.StringIO, threading.Event, list]:  # type: ignore[type-arg]
    out = io.StringIO()
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            serve_forever(out=out, stop=stop, **kwargs)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out, stop, errors


def _exports(out: io.StringIO) -> dict[str, str]:
    deadline = time.monotonic() + 10
    while "Ctrl-C" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    values = {}
    for line in out.getvalue().splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            values[name] = shlex.split(value)[0]
    return values


@pytest.mark.parametrize("concurrency", [1, 4])
def test_emulate_prints_working_settings_and_follows_deliveries(concurrency: int) -> None:
    from .receiver import run_receiver

    with run_receiver() as receiver:
        thread, out, stop, errors = _serve(
            webhook_url=receiver.url, webhook_concurrency=concurrency
        )
        try:
            env = _exports(out)
            assert env["SCALEKIT_WEBHOOK_SECRET"].startswith("whsec_")
            in_flight = "in event order" if concurrency == 1 else f"up to {concurrency} deliveries"
            assert in_flight in out.getvalue()
            assert env["SCALEKIT_ENVIRONMENT_URL"].startswith("https://localhost:")
            assert Path(env["REQUESTS_CA_BUNDLE"]).is_file()
            import httpx

            from scim_readiness.devstack.emulator import process_ca

            with httpx.Client(verify=process_ca().client_context(), trust_env=False) as client:
                token = client.post(
                    env["SCALEKIT_ENVIRONMENT_URL"] + "/oauth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": env["SCALEKIT_CLIENT_ID"],
                        "client_secret": env["SCALEKIT_CLIENT_SECRET"],
                    },
                )
                assert token.status_code == 200
                created = client.post(
                    env["SCIM_BASE_URL"] + "/Users",
                    headers={"authorization": f"Bearer {env['SCIM_TOKEN']}"},
                    json={"userName": "dev@local.example", "active": True},
                )
                assert created.status_code == 201
            deadline = time.monotonic() + 10
            while "user_created" not in out.getvalue() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert re.search(r"user_created\s+evt_\d+\s+attempt 1: 200", out.getvalue())
        finally:
            stop.set()
            thread.join(timeout=10)
    assert not errors and not thread.is_alive()


def test_emulate_refuses_bad_input() -> None:
    with pytest.raises(UsageError, match="not an http"):
        serve_forever(webhook_url="ftp://x", stop=threading.Event(), out=io.StringIO())
    with pytest.raises(UsageError, match="not a TCP port"):
        serve_forever(port=70000, out=io.StringIO())
    stop = threading.Event()
    stop.set()
    with pytest.raises(UsageError, match="webhook-secret"):
        serve_forever(
            webhook_url="http://127.0.0.1:9/x",
            webhook_secret="whsec_",
            stop=stop,
            out=io.StringIO(),
        )
    for concurrency in (0, 65):
        with pytest.raises(UsageError, match="--webhook-concurrency"):
            serve_forever(webhook_concurrency=concurrency, stop=stop, out=io.StringIO())
    with start_emulator() as busy, pytest.raises(UsageError, match="could not listen"):
        serve_forever(port=busy.port, stop=stop, out=io.StringIO())


def test_example_seed_file_loads_and_serves() -> None:
    from scim_readiness.devstack.emulator.seed import example_seed_path

    seed = Seed.from_yaml(example_seed_path())
    with start_emulator(seed) as emu:
        directory = emu.state.directory(emu.directory_id)
        grace = next(u for u in directory.users.values() if u.given_name == "Grace")
        assert directory.roles_of(grace) == ["editor", "admin"]
        assert emu.webhook_urls() == ["http://localhost:8000/webhooks/scalekit"]


@pytest.mark.parametrize("stop_signal", ["SIGINT", "SIGTERM"])
def test_emulate_command_runs_until_interrupted(tmp_path: Path, stop_signal: str) -> None:
    import os
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(root / "src"), str(root)]),
        XDG_DATA_HOME=str(tmp_path),  # the default state dir, kept out of the real home
        TMPDIR=str(scratch),  # whatever the emulator puts in the temp dir, we see
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "scim_readiness", "emulate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        proc.send_signal(getattr(signal, stop_signal))
        rest, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    text = "".join(lines)
    assert "export SCALEKIT_ENVIRONMENT_URL=https://localhost:" in text
    assert "export SCIM_TOKEN=" in text
    assert "stopped." in rest
    assert proc.returncode == 0, err
    assert list(scratch.iterdir()) == []  # no CA, key or bundle left in the temp dir
    assert (tmp_path / "scim-readiness" / "emulator" / "ca.pem").is_file()  # kept state


def test_banner_states_the_retry_schedule_deadline_and_keepalive() -> None:
    thread, out, stop, errors = _serve(retry_scale=0.01)
    _exports(out)
    stop.set()
    thread.join(10)
    assert not errors, errors
    text = out.getvalue()
    assert "8 attempts, waiting 0, 50 ms, 3 s, 18 s, 1.2 min, 3 min, 6 min, 6 min" in text
    assert "x 0.01, --retry-scale" in text and "within 10 s" in text
    assert "pings every 30 s or more are allowed" in text
    with pytest.raises(UsageError, match="retry-scale"):
        serve_forever(retry_scale=0, out=io.StringIO())


def test_retries_follow_scalekits_schedule_scaled() -> None:
    from scim_readiness.devstack.emulator.delivery import (
        ANSWER_DEADLINE_S,
        RETRY_SCHEDULE_S,
        describe_schedule,
        retry_delay_s,
    )

    assert RETRY_SCHEDULE_S == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert sum(RETRY_SCHEDULE_S) / 3600 == pytest.approx(27.6, abs=0.05)
    assert [retry_delay_s(n) for n in range(1, 9)] == [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        36000,
        36000,
    ]
    assert describe_schedule(1, 8) == "0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h"
    assert ANSWER_DEADLINE_S == 10


def test_grpc_server_allows_pings_every_30_seconds() -> None:
    from scim_readiness.devstack.emulator.grpc_services import KEEPALIVE_OPTIONS

    options = dict(KEEPALIVE_OPTIONS)
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == 30_000
    assert options["grpc.keepalive_permit_without_calls"] == 1


def _token(env: dict[str, str], ca_pem: Path) -> str:
    import ssl

    import httpx

    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_pem)), trust_env=False) as c:
        answer = c.post(
            env["SCALEKIT_ENVIRONMENT_URL"] + "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": env["SCALEKIT_CLIENT_ID"],
                "client_secret": env["SCALEKIT_CLIENT_SECRET"],
            },
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])


def test_state_dir_keeps_the_ca_token_key_and_webhook_secret_across_restarts(
    tmp_path: Path,
) -> None:
    from scim_readiness.devstack.emulator.tokens import SigningKey

    state = tmp_path / "state"
    runs = []
    for _ in range(2):
        thread, out, stop, errors = _serve(
            state_dir=state, webhook_url="http://127.0.0.1:9/hook", retry_scale=0.001
        )
        env = _exports(out)
        token = _token(env, Path(env["NODE_EXTRA_CA_CERTS"]))
        stop.set()
        thread.join(10)
        assert not errors, errors
        runs.append((env, token, (state / "ca.pem").read_bytes(), out.getvalue()))
    (first, token, ca_first, _), (second, _, ca_second, banner) = runs
    assert ca_first == ca_second  # one CA: an app's trust settings survive the restart
    assert first["SCALEKIT_WEBHOOK_SECRET"] == second["SCALEKIT_WEBHOOK_SECRET"]
    assert first["REQUESTS_CA_BUNDLE"] == second["SSL_CERT_FILE"] == str(state / "trust-bundle.pem")
    assert ca_first in (state / "trust-bundle.pem").read_bytes()
    assert f"--ca-bundle {state / 'ca.pem'}" in banner
    key = SigningKey.from_pem((state / "token-signing-key.pem").read_bytes())
    assert key.claims(token) is not None  # the first run's token, checked by the kept key
    assert (state.stat().st_mode & 0o777) == 0o700


def test_sync_announces_the_seeded_directory_at_start() -> None:
    from .receiver import run_receiver

    with run_receiver() as receiver:
        thread, out, stop, errors = _serve(webhook_url=receiver.url, sync=True)
        try:
            _exports(out)
            deadline = time.monotonic() + 10
            while len(receiver.received) < 7 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            stop.set()
            thread.join(10)
    assert not errors, errors
    kinds = [json.loads(r.body)["type"].rsplit(".", 1)[-1] for r in receiver.received]
    assert kinds == ["group_created"] * 2 + ["user_created"] * 5
    assert "Initial sync: 7 events" in out.getvalue()
