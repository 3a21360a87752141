"""Canary secrets: run the full suite against every flaw and find no secret anywhere.

Each flaw gets its own stack with distinctive canary credentials (Scalekit client secret,
webhook signing secret, probe and portal tokens, SCIM token). The CLI runs verbose and with
``--debug``, writing JSON, JUnit and Markdown. Every captured stream and every file the run
wrote (reports and ledger) is then searched for each secret, for the webhook secret's key
without its ``whsec_`` prefix, for the access tokens the emulator issued and for the portal
links it generated (links are secrets too). Zero hits.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest

from scim_readiness.devstack.demo_stack import all_flaws

from .conftest import cli_args, cli_env, write_config

PARALLEL = 4


def _run_with_canaries(flaws: tuple[str, ...], workdir: Path) -> list[str]:
    """Run the suite against a stack with ``flaws``; every leak found, as text."""
    from scim_readiness.devstack.demo_stack import start_stack
    from scim_readiness.devstack.emulator import default_seed

    seed = default_seed()
    seed.client_secret = f"{CLIENT_SECRET_LABEL}{secrets.token_hex(8)}"
    workdir.mkdir(parents=True, exist_ok=True)
    with start_stack(flaws, seed=seed, workdir=workdir) as stack:
        config = write_config(stack, workdir / "readiness.yaml")
        outputs = {name: workdir / name for name in ("r.json", "r.xml", "r.md")}
        args = ["--debug", "run", "-c", str(config), "--ca-bundle", stack.ca_path, "-v"]
        args += ["--json", str(outputs["r.json"]), "--junit", str(outputs["r.xml"])]
        args += ["--markdown", str(outputs["r.md"]), "--format", "plain"]
        done = subprocess.run(
            cli_args(*args),
            capture_output=True,
            text=True,
            timeout=240,
            env=cli_env(**stack.secrets_env()),
        )
        state = stack.emulator.state
        with state.lock:
            issued = [*state.tokens, *state.portal_links]
        canaries = {
            **stack.secrets_env(),
            "webhook secret key": stack.webhook_secret.removeprefix("whsec_"),
        }
        canaries.update({f"issued token/link #{i}": t for i, t in enumerate(issued)})
    texts = {"stdout": done.stdout, "stderr": done.stderr}
    label = ",".join(flaws) or "no flaw"
    for path in (*outputs.values(), workdir / "ledger.jsonl"):
        if path.exists():
            texts[path.name] = path.read_text(encoding="utf-8", errors="replace")
    leaks = []
    # A preflight flaw blocks the checks that need what it breaks: exit 3 is its verdict.
    blocked = any(all_flaws()[name].check == "preflight" for name in flaws if name in all_flaws())
    if done.returncode not in ((0, 1, 3) if blocked else (0, 1)):
        leaks.append(f"[{label}] exit {done.returncode}: {done.stderr[-1500:]}")
    if not issued:
        leaks.append(f"[{label}] the emulator issued no token: the canaries were never in play")
    if not texts.get("r.json"):
        leaks.append(f"[{label}] no JSON report written")
    pieces = {name: _pieces(value) for name, value in canaries.items()}
    for where, text in texts.items():
        for name, windows in pieces.items():
            hit = next((w for w in windows if w in text), None)
            if hit is not None:
                leaks.append(
                    f"[{label}] a piece of {name} ({len(hit)} characters) found in {where}"
                )
    return leaks


WINDOW = 10
CLIENT_SECRET_LABEL = "canary_client_secret_"


def _pieces(value: str) -> set[str]:
    """Every 10-character window of a secret and of its base64, hex and URL-encoded forms (a
    whsec_ key also as the raw bytes it decodes to): a leak of part of a secret, or of the
    secret in another encoding, is a leak. For a link only its credential part counts (the
    host and path are public)."""
    core = value.rsplit("/", 1)[-1] if value.startswith("http") else value
    # The canary's readable label ("canary_client_secret_") is not secret material: the
    # config's own key names contain most of it.
    core = core.removeprefix(CLIENT_SECRET_LABEL)
    forms = {
        core,
        quote(core, safe=""),
        base64.b64encode(core.encode()).decode(),
        core.encode().hex(),
    }
    try:
        raw = base64.b64decode(core.removeprefix("whsec_"), validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) >= 8:
        forms |= {raw.hex(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {form[i : i + WINDOW] for form in forms for i in range(len(form) - WINDOW + 1)}


def all_flaw_names() -> list[str]:
    from scim_readiness.devstack.demo_stack import all_flaws

    return sorted(all_flaws())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_no_secret_in_any_output_for_any_flaw(tmp_path: Path) -> None:
    runs: list[tuple[str, ...]] = [(), *((name,) for name in all_flaw_names())]
    with ThreadPoolExecutor(PARALLEL) as pool:
        found = list(
            pool.map(
                lambda flaws: _run_with_canaries(flaws, tmp_path / ("-".join(flaws) or "clean")),
                runs,
            )
        )
    leaks = [leak for run in found for leak in run]
    assert len(runs) >= 24
    assert not leaks, "\n".join(leaks)
