"""``scim-readiness events send`` end to end against the reference app on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from scim_readiness.cli.main import main
from scim_readiness.devstack.sampleapp import AppSettings, RunningApp, serve_app
from scim_readiness.devstack.tls_ca import LocalCA

SECRET = "whsec_c2NpbS1yZWFkaW5lc3MtdGVzdC12ZWN0b3Ita2V5ISE="


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("cli-send-ca"))


@pytest.fixture
def app(ca: LocalCA) -> Iterator[RunningApp]:
    with serve_app(AppSettings(webhook_secret=SECRET), ca.issue("127.0.0.1")) as running:
        yield running


@pytest.fixture(autouse=True)
def _secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)


def send(ca: LocalCA, url: str, *extra: str) -> int:
    args = ["events", "send", *extra[:1], "--to", url, "--secret", "TEST_WEBHOOK_SECRET"]
    return main([*args, "--ca-bundle", str(ca.ca_path), *extra[1:]])


def test_valid_event_is_accepted(
    ca: LocalCA, app: RunningApp, capsys: pytest.CaptureFixture[str]
) -> None:
    assert send(ca, app.webhook_url, "user_created") == 0
    out, err = capsys.readouterr()
    assert "status 200" in out and "as expected" in out
    assert "webhook-signature: v1,<redacted>" in out
    assert SECRET not in out + err
    assert app.store.count_users() == 1


def test_broken_delivery_refused_is_exit_0_and_accepted_is_exit_1(
    ca: LocalCA, app: RunningApp, capsys: pytest.CaptureFixture[str]
) -> None:
    assert send(ca, app.webhook_url, "user_created", "--mutate", "stale", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == 401 and result["expected"] == "reject"
    assert app.store.count_users() == 0
    careless = AppSettings(webhook_secret=SECRET, flaws=frozenset({"no-signature-check"}))
    with serve_app(careless, ca.issue("127.0.0.1")) as flawed:
        assert send(ca, flawed.webhook_url, "user_created", "--mutate", "unsigned") == 1
    assert "NOT as expected" in capsys.readouterr().out


def test_usage_errors_never_echo_the_secret(
    ca: LocalCA, app: RunningApp, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["events", "send", "user_created", "--to", app.webhook_url]
    assert main([*base, "--secret", SECRET]) == 2
    err = capsys.readouterr().err
    assert "NAME of an environment variable" in err and SECRET not in err
    assert main([*base, "--secret", "UNSET_SECRET_VARIABLE_X"]) == 2
    assert "not set" in capsys.readouterr().err
    assert send(ca, app.webhook_url, "user_created", "--mutate", "sideways") == 2
    assert "rotated" in capsys.readouterr().err
    assert send(ca, app.webhook_url, "user_teleported") == 2
    assert "user_created" in capsys.readouterr().err
    assert app.store.processed_event_count() == 0


def test_unreachable_endpoint_is_exit_3(ca: LocalCA, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert send(ca, f"https://127.0.0.1:{port}/webhooks", "user_created") == 3
    assert "could not deliver" in capsys.readouterr().err


def test_legacy_names_show_an_app_that_acts_only_on_them(
    ca: LocalCA, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy_only = AppSettings(webhook_secret=SECRET, flaws=frozenset({"legacy-event-names"}))
    with serve_app(legacy_only, ca.issue("127.0.0.1")) as app:
        # The current name is acknowledged and does nothing...
        assert send(ca, app.webhook_url, "user_created") == 0
        assert app.store.count_users() == 0
        # ...the legacy name (by flag, or typed as the TYPE) creates the user.
        capsys.readouterr()
        assert send(ca, app.webhook_url, "user_created", "--legacy-names", "--json") == 0
        assert json.loads(capsys.readouterr().out)["event_type"] == "scalekit.dir.user.create"
        assert app.store.count_users() == 1
        assert send(ca, app.webhook_url, "scalekit.dir.user.create") == 0
        assert "event scalekit.dir.user.create" in capsys.readouterr().out
        assert app.store.count_users() == 2
