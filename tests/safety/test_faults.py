"""The fault matrix: every network fault against every target the checks talk to.

Each scenario points one target of an otherwise healthy demo stack (the app's webhook, the
probe, the Scalekit environment's HTTP and gRPC, the directory's SCIM endpoint, the app's
portal-link endpoint) at a small misbehaving server on loopback, runs the CLI on the checks
that use that target, and expects what a release engineer needs: no traceback, the run ends
within its budget, the report files are written, the exit code says "not ready" or "could not
evaluate" (1 or 3, never 0), and some finding names the fault in plain words.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import ssl
import time
import xml.etree.ElementTree as ET  # noqa: S405 - parsing our own report, not untrusted input
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from scim_readiness.devstack.emulator import process_ca

from .conftest import SCIM_EMAIL_DOMAIN, cli_env, write_config
from .faulty_servers import (
    GRPC_FAULTS,
    HTTP_FAULTS,
    UNRESOLVABLE_HOST,
    FaultyHttpServer,
    GrpcFaultFront,
    closed_port,
    self_signed_context,
)
from .measure import Measured, run_measured

if TYPE_CHECKING:
    from scim_readiness.devstack.demo_stack import Stack

BUDGET_S = 30.0
PARALLEL = 4
TARGET_TIMEOUT_S = 3.0
# Plain words that name each fault; a finding must contain one of them.
FAULT_WORDS: dict[str, tuple[str, ...]] = {
    # httpx says "All connection attempts failed" for a refused TCP connection.
    "refused": ("refused", "connection attempts failed"),
    "dns": ("resolve", "dns", "not known", "name or service", "getaddrinfo", "nodename"),
    "tls-self-signed": ("self-signed", "self signed", "not trusted", "untrusted", "issuer"),
    "tls-wrong-host": ("hostname", "mismatch", "doesn't match", "does not match", "not valid for"),
    "tls-expired": ("expired",),
    "hang": ("no answer", "no complete answer", "timed out", "did not finish answering"),
    "headers-then-stall": ("no complete answer", "timed out", "did not finish answering"),
    "reset": ("reset", "closed", "disconnected", "incomplete", "peer", "ended"),
    "http-503": ("503", "unavailable"),
    # "answered without its id" / "nothing at 'location'" describe a body that is no JSON.
    "non-json": ("json", "without its id", "nothing at"),
    "redirect-loop": ("redirect", "302"),
    "huge-body": ("large", "mib", "size", "limit", "too big"),
    # A body that never completes is named with the endpoint and the deadline.
    "drip": ("did not finish answering", "no complete answer"),
    "endless-chunked": ("larger than", "did not finish answering", "no complete answer"),
    "deep-json": ("nested deeper than",),
    # Elsewhere a page carrying a 1 MB cursor is just an answer without the expected fields.
    "huge-cursor": ("characters long", "larger than", "without its id", "nothing at", "json"),
    "redirect-only": ("redirect", "308"),
    # What a reflecting endpoint says is anything; what matters is that no secret comes back
    # out of the checker (see _leaks).
    "reflect": (),
    "grpc-unavailable": ("unavailable", "could not reach", "refused", "connect"),
    "grpc-hang": ("no answer", "timed out", "timeout", "did not answer"),
    "grpc-unauthenticated": ("unauthenticated", "expired", "token", "credentials", "refused"),
}
NETWORK_FAULTS = ("refused", "dns", "tls-self-signed", "tls-wrong-host", "tls-expired")
# Which checks use each target (the rest of the stack stays healthy).
TARGET_CHECKS: dict[str, tuple[str, ...]] = {
    "webhook": ("webhook-endpoint", "user-lifecycle"),
    "probe": ("user-lifecycle", "data-model"),
    "scalekit": ("environment", "admin-portal"),
    "scim": ("user-lifecycle",),
    "portal-link": ("admin-portal",),
    "grpc": ("environment", "admin-portal", "data-model"),
}
# A webhook acknowledges with any 2xx: its body is nobody's business, so body faults of a
# 200 answer are not faults there. (An endless body still is: the sender must stop reading.)
BODY_FAULTS = ("non-json", "huge-body", "deep-json", "huge-cursor")
# Words a finding needs for (target, fault) where the fault words do not apply: a webhook's
# endless 200 body is cut at the cap and the acknowledgement stands, so no finding names it.
TARGET_FAULT_WORDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("webhook", "endless-chunked"): (),
}
# The checker's peak memory in any scenario (an endless body must not be held).
MAX_RSS_MB = 300


@dataclass(frozen=True)
class Scenario:
    target: str
    fault: str

    def __str__(self) -> str:
        return f"{self.target}-{self.fault}"


def scenarios() -> list[Scenario]:
    found = []
    for target in ("webhook", "probe", "scalekit", "scim", "portal-link"):
        for fault in (*NETWORK_FAULTS, *HTTP_FAULTS):
            if target == "webhook" and fault in BODY_FAULTS:
                continue
            found.append(Scenario(target, fault))
    found += [Scenario("grpc", fault) for fault in (*GRPC_FAULTS, "grpc-unauthenticated")]
    return found


def _server_context(fault: str, directory: Path) -> ssl.SSLContext:
    ca = process_ca()
    if fault == "tls-self-signed":
        return self_signed_context(directory)
    if fault == "tls-wrong-host":
        return ca.issue("wrong-host.scim-readiness.example").server_context()
    if fault == "tls-expired":
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        expired = ca.issue(
            "127.0.0.1", "localhost", not_before=past, valid_for=dt.timedelta(days=1)
        )
        return expired.server_context()
    return ca.issue("127.0.0.1", "localhost").server_context()


@contextlib.contextmanager
def faulty_base(fault: str, directory: Path) -> Iterator[str]:
    """The base URL (scheme, host, port) of something that fails with ``fault``."""
    if fault == "refused":
        yield f"https://127.0.0.1:{closed_port()}"
        return
    if fault == "dns":
        yield f"https://{UNRESOLVABLE_HOST}:8443"
        return
    behaviour = fault if fault in HTTP_FAULTS else "http-503"
    with FaultyHttpServer(behaviour, _server_context(fault, directory)) as server:
        yield server.url("").rstrip("/")


def _config_for(stack: Stack, scenario: Scenario, base: str, path: Path) -> Path:
    timeouts: dict[str, Any] = {
        "scalekit": {"timeout_s": TARGET_TIMEOUT_S},
        "webhook": {"timeout_s": TARGET_TIMEOUT_S},
    }
    checks: dict[str, Any] = {"allow_mutation": True, "timeout_s": BUDGET_S}
    for check in TARGET_CHECKS[scenario.target]:
        checks[check] = {"timeout_s": BUDGET_S - 10}
    sections: dict[str, Any] = {**timeouts, "checks": checks}
    target = scenario.target
    if target == "webhook":
        sections["webhook"] = {
            **timeouts["webhook"],
            "url": f"{base}/webhooks/scalekit",
            "allowed_hosts": ["127.0.0.1", "localhost", UNRESOLVABLE_HOST],
        }
    elif target == "probe":
        sections["probe"] = {
            "kind": "http",
            "http": {
                "user_by_email": f"{base}/probe/users?email={{email}}",
                "user_by_id": f"{base}/probe/users/{{directory_user_id}}",
                "list_users": f"{base}/probe/users?cursor={{cursor}}",
                "headers": {"Authorization": "Bearer ${SCIM_READINESS_PROBE_TOKEN}"},
                "timeout_s": TARGET_TIMEOUT_S,
            },
        }
    elif target in ("scalekit", "grpc"):
        # The SDK follows up to 30 redirects, each a new TLS handshake: on a loaded machine a
        # short timeout would cut a redirect loop short and hide it behind "no answer".
        sections["scalekit"] = {"timeout_s": 10.0, "environment_url": base}
    elif target == "scim":
        sections["scim_idp"] = {
            "url": f"{base}/scim/v2/directories/{stack.emulator.directory_id}",
            "token": "${SCIM_READINESS_SCIM_TOKEN}",
            "timeout_s": TARGET_TIMEOUT_S,
        }
        checks["user-lifecycle"] = {"timeout_s": BUDGET_S - 10, "options": {"mode": "scim"}}
        sections["test_identities"] = {"email_domain": SCIM_EMAIL_DOMAIN}
    elif target == "portal-link":
        portal = stack.raw_config()["admin_portal"]
        portal["app_link_endpoint"] = {
            **portal["app_link_endpoint"],
            "url": f"{base}/portal-link",
        }
        sections["admin_portal"] = portal
    return write_config(stack, path, **sections)


def _report_text(report: dict[str, Any], checks: tuple[str, ...]) -> str:
    parts = []
    for check in report["checks"]:
        if check["id"] not in checks:
            continue
        for finding in check["findings"]:
            parts += [str(finding.get(k, "")) for k in ("title", "expected", "observed", "why")]
        parts += [str(step.get("observed", "")) for step in check.get("timeline", [])]
    return "\n".join(parts).lower()


def run_scenario(stack: Stack, scenario: Scenario, tmp_path: Path) -> list[str]:
    """Run one scenario; what went wrong, in words (empty: the fault was handled)."""
    from scim_readiness.plugin.ledger import Ledger

    checks = TARGET_CHECKS[scenario.target]
    with contextlib.ExitStack() as resources:
        if scenario.target == "grpc":
            if scenario.fault == "grpc-unauthenticated":
                base = stack.emulator.env_url
                state = stack.emulator.state
                saved = state.token_lifetime_s
                # Tokens the emulator issues now expire at once: every call after the
                # exchange presents an expired token.
                state.token_lifetime_s = 0.001
                resources.callback(setattr, state, "token_lifetime_s", saved)
            else:
                front = resources.enter_context(GrpcFaultFront(scenario.fault, stack.emulator.port))
                base = f"https://localhost:{front.port}"
        else:
            base = resources.enter_context(faulty_base(scenario.fault, tmp_path / "certs"))
        config = _config_for(stack, scenario, base, tmp_path / "readiness.yaml")
        args = ["run", "-c", str(config), "--ca-bundle", stack.ca_path, "--format", "plain"]
        args += ["--timeout", str(BUDGET_S), "--json", str(tmp_path / "r.json")]
        args += ["--junit", str(tmp_path / "r.xml")]
        for check in checks:
            args += ["--only", check]
        started = time.monotonic()
        done = run_measured([*_python(), *args], tmp_path, timeout=BUDGET_S + 60, env=cli_env())
        elapsed = time.monotonic() - started
    context = f"{scenario}: exit {done.returncode} in {elapsed:.1f}s, peak {done.rss_mb:.0f} MB"
    context += f"\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    problems = []
    if "Traceback" in done.stdout + done.stderr:
        problems.append("a traceback was printed")
    if done.returncode not in (1, 3):
        problems.append(f"exit {done.returncode}, expected 1 or 3")
    # CLI start-up plus the budget; the runner's own grace for stuck checks is not needed.
    if elapsed > BUDGET_S + 15:
        problems.append(f"took {elapsed:.1f}s with a budget of {BUDGET_S:g}s")
    if done.rss_mb > MAX_RSS_MB:
        problems.append(f"peak memory {done.rss_mb:.0f} MB, more than {MAX_RSS_MB} MB")
    if "internal error" in (done.stdout + done.stderr).lower():
        problems.append("the fault was reported as the checker's own (internal error)")
    try:
        report = json.loads((tmp_path / "r.json").read_text())
        ET.parse(tmp_path / "r.xml")  # noqa: S314 - our own file
    except (OSError, ValueError, ET.ParseError) as exc:
        return [*problems, f"report files missing or invalid: {exc}", context]
    words = TARGET_FAULT_WORDS.get((scenario.target, scenario.fault), FAULT_WORDS[scenario.fault])
    if words and not any(word in _report_text(report, checks) for word in words):
        problems.append(f"no finding names the fault (any of {words})")
    problems += _leaks(stack, done, tmp_path)
    # What the run created is removed, or the report says what could not be.
    if Ledger(tmp_path / "ledger.jsonl", "").outstanding() and "could not be removed" not in (
        _report_text(report, tuple(report_ids(report)))
    ):
        problems.append("test data left behind without a finding saying so")
    return [*problems, context] if problems else []


def _leaks(stack: Stack, done: Measured, directory: Path) -> list[str]:
    """Each configured secret found in the run's output or files (the endpoints that reflect
    what they receive hand every header back)."""
    texts = {"stdout": done.stdout, "stderr": done.stderr}
    for name in ("r.json", "r.xml", "ledger.jsonl"):
        with contextlib.suppress(OSError):
            texts[name] = (directory / name).read_text(errors="replace")
    canaries = {**stack.secrets_env(), "webhook key": stack.webhook_secret.removeprefix("whsec_")}
    return [
        f"{label} appears in {where}"
        for label, secret in canaries.items()
        for where, text in texts.items()
        if secret and secret in text
    ]


def report_ids(report: dict[str, Any]) -> list[str]:
    return [str(check["id"]) for check in report["checks"]]


def _python() -> list[str]:
    import sys

    return [sys.executable, "-m", "scim_readiness"]


def test_matrix_covers_every_fault() -> None:
    faults = {s.fault for s in scenarios()}
    assert faults == set(FAULT_WORDS)
    assert len(scenarios()) >= 80


# Defects found by this matrix in the checker itself, pinned as strict xfails so a fix turns
# them green and the mark has to go (scenario -> reason). None is open at present.
KNOWN_DEFECTS: dict[str, str] = {}


def _params() -> list[Any]:
    return [
        pytest.param(
            scenario,
            id=str(scenario),
            marks=(
                [
                    pytest.mark.xfail(
                        strict=True, raises=AssertionError, reason=KNOWN_DEFECTS[str(scenario)]
                    )
                ]
                if str(scenario) in KNOWN_DEFECTS
                else []
            ),
        )
        for scenario in scenarios()
    ]


@pytest.fixture(scope="module")
def outcomes(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Every scenario, run a few at a time (they wait on timeouts, not on the CPU)."""
    from concurrent.futures import ThreadPoolExecutor

    # Made here, one thread: tmp_path_factory is not safe to call from several at once.
    directories = {
        str(s): tmp_path_factory.mktemp(f"fault-{s}", numbered=False) for s in scenarios()
    }

    def one(scenario: Scenario) -> tuple[str, list[str]]:
        return str(scenario), run_scenario(stack, scenario, directories[str(scenario)])

    # Expiring tokens changes the shared emulator: that one runs alone, afterwards.
    alone = [s for s in scenarios() if s.fault == "grpc-unauthenticated"]
    shared = [s for s in scenarios() if s not in alone]
    with ThreadPoolExecutor(PARALLEL) as pool:
        found = dict(pool.map(one, shared))
    found.update(one(s) for s in alone)
    return found


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("scenario", _params())
def test_fault(outcomes: dict[str, list[str]], scenario: Scenario) -> None:
    problems = outcomes[str(scenario)]
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("fault", ["refused", "reset", "non-json"])
def test_a_dead_probe_ends_the_wait_with_the_probe_fault(
    stack: Stack, tmp_path: Path, fault: str
) -> None:
    """A probe that refuses, resets or answers garbage is broken, not slow: the preflight
    finds it before any round trip starts, and the checks that read the app end at once as
    ERROR "blocked by the probe preflight", naming the fault, instead of waiting out their
    budgets and ending in 'what it was still waiting for is unknown'."""
    problems = run_scenario(stack, Scenario("probe", fault), tmp_path)
    assert not problems, "\n".join(problems)
    report = json.loads((tmp_path / "r.json").read_text())
    check = next(c for c in report["checks"] if c["id"] == "user-lifecycle")
    assert "still waiting for" not in _report_text(report, ("user-lifecycle",))
    assert check["status"] == "ERROR"
    assert check["timeline"] == []  # blocked: no step was sent
    title = check["findings"][0]["title"]
    assert title.startswith("blocked by the probe preflight: probe "), title
    assert "127.0.0.1" in title
