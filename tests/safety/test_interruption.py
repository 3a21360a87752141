"""Kill the CLI mid-mutation, at many points, and prove nothing is left behind.

A seeded schedule picks, for each kill point, a signal (SIGINT, SIGTERM, SIGKILL), how many
ledger lines must exist before the signal is sent (so the kill lands while checks are creating
and removing test identities), a short extra delay, and whether the round trips go through
signed events or through SCIM. After SIGINT/SIGTERM the run must clean up by itself and exit
130; after SIGKILL `scim-readiness cleanup` must finish the job. Either way the app then holds
no active test user and the emulator no test user or group, and the ledger parses.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from scim_readiness.plugin.ledger import Ledger

from .conftest import (
    MUTATING,
    cli_args,
    cli_env,
    ledger_lines,
    leftovers,
    purge_test_identities,
    run_cli,
    settle_deliveries,
    write_config,
)

if TYPE_CHECKING:
    from scim_readiness.devstack.demo_stack import Stack

SEED = 20261128
POINTS = 30
# A full run of the four mutating checks writes about this many ledger lines (events mode).
TYPICAL_LINES = 40
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


@dataclass(frozen=True)
class KillPoint:
    index: int
    sig: signal.Signals
    after_lines: int
    extra_delay_s: float
    scim: bool
    double: bool = False  # a second signal 50 ms later (an impatient Ctrl-C Ctrl-C)

    def __str__(self) -> str:
        mode = "scim" if self.scim else "events"
        twice = "x2" if self.double else ""
        return f"{self.index:02d}-{self.sig.name}{twice}-after{self.after_lines}-{mode}"


def schedule(seed: int = SEED, points: int = POINTS) -> list[KillPoint]:
    rng = random.Random(seed)
    # Drawn in a fixed order, so one seed always gives the same schedule.
    return [
        KillPoint(
            index=index,
            sig=SIGNALS[index % len(SIGNALS)],  # every signal equally often
            after_lines=rng.randint(1, TYPICAL_LINES),
            extra_delay_s=round(rng.uniform(0.0, 0.15), 3),
            scim=rng.random() < 0.35,
            double=index % 5 == 3 and SIGNALS[index % len(SIGNALS)] is not signal.SIGKILL,
        )
        for index in range(points)
    ]


def wait_for_lines(path: Path, count: int, process: subprocess.Popen[str], limit_s: float) -> int:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and process.poll() is None:
        seen = len(ledger_lines(path))
        if seen >= count:
            return seen
        time.sleep(0.003)
    return len(ledger_lines(path))


def assert_ledger_parses(path: Path) -> None:
    for number, line in enumerate(ledger_lines(path), 1):
        record = json.loads(line)  # a torn line would raise here
        # never_created: recorded before a create that the interrupt stopped before it was sent.
        assert record["state"] in ("created", "removed", "unremovable", "never_created"), (
            number,
            line,
        )


def test_schedule_is_seeded_and_covers_every_signal() -> None:
    plan = schedule()
    assert plan == schedule()
    assert len(plan) >= 20
    assert {p.sig for p in plan} == set(SIGNALS)
    assert any(p.scim for p in plan) and not all(p.scim for p in plan)
    assert any(p.double for p in plan)


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("point", schedule(), ids=str)
def test_kill_during_mutation_leaves_nothing_behind(
    clean_stack: Stack, tmp_path: Path, point: KillPoint
) -> None:
    stack = clean_stack
    # Purged after any earlier point that failed; anything here came from elsewhere.
    assert not leftovers(stack), "test identities were left behind before this kill point"
    config = write_config(stack, tmp_path / "readiness.yaml", scim=point.scim)
    ledger = tmp_path / "ledger.jsonl"
    args = ["run", "-c", str(config), "--ca-bundle", stack.ca_path, "--format", "plain"]
    for check in MUTATING:
        args += ["--only", check]
    args += ["--json", str(tmp_path / "report.json")]
    process = subprocess.Popen(
        cli_args(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        seen = wait_for_lines(ledger, point.after_lines, process, limit_s=60)
        time.sleep(point.extra_delay_s)
        killed = process.poll() is None
        if killed:
            process.send_signal(point.sig)
            if point.double:
                time.sleep(0.05)
                if process.poll() is None:
                    process.send_signal(point.sig)
        out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert "Traceback" not in err, err
    assert_ledger_parses(ledger)
    assert seen >= 1, f"no ledger line before the kill: {err[-2000:]}"
    if killed and point.sig is not signal.SIGKILL:
        # A second signal may land after the handler is gone: then it ends the process.
        allowed = (130, -point.sig) if point.double else (130,)
        assert process.returncode in allowed, (process.returncode, err[-2000:])
    if killed and point.sig is not signal.SIGKILL and not point.double:
        # The partial report is written, and the automatic cleanup left nothing.
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["interrupted"] is True
        assert Ledger(ledger, "").outstanding() == [], err[-2000:]
    done = run_cli("cleanup", "-c", str(config), "--ca-bundle", stack.ca_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert Ledger(ledger, "").outstanding() == []
    assert_ledger_parses(ledger)
    # In mode scim the app learns of the removals from the emulator's webhooks, which may
    # still be on their way (or waiting for a retry under load): judge its final state.
    settle_deliveries(stack)
    left = leftovers(stack)
    assert not left, (left, ledger_lines(ledger))


@pytest.fixture
def clean_stack(stack: Stack) -> Iterator[Stack]:
    """The module's stack, purged of test identities after each kill point that left any:
    that point fails on its own assertion, and the next one still starts clean instead of
    failing on the same leftover."""
    yield stack
    settle_deliveries(stack)
    if leftovers(stack):
        purge_test_identities(stack)
